"""The review page in a real browser (headless Chromium): load, seek on the score plot, step a
frame with the keyboard, set the onset, click the source, save, and read labels.json back, all
under the page's strict CSP; and a page of another origin that frames the review page can neither
show it nor click it."""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from review_run import H, W, make_run

from bleedorigin.review import server as server_mod
from bleedorigin.review.server import ReviewRun, ReviewServer

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromium-driver")]
# flags that keep Chromium off the network and out of any existing profile
# collects the page's CSP violations from the very start (a CDP script is not itself under the CSP)
WATCH_CSP = ("window.cspViolations = [];"
             "document.addEventListener('securitypolicyviolation',"
             " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")


def wait_for(driver, script: str, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CSP})
    yield driver
    driver.quit()


def serve(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def test_review_page_seek_click_source_save(tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = make_run(tmp_path, n=90, onset=30)
    server = ReviewServer(ReviewRun(run), 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        browser.get(server.url)
        wait_for(browser, "return document.body.dataset.ready")
        # the overlay's codec plays here: the browser decoded a picture of the right size
        assert browser.execute_script("const v = document.getElementById('video');"
                                      "return [v.videoWidth, v.readyState >= 2, v.error]") == [W, True, None]
        assert browser.find_element(By.ID, "events").text.count("1.00 s") == 1  # the run's event at frame 30

        plot = browser.find_element(By.ID, "plot")  # click on the score plot seeks to that frame
        width = plot.rect["width"]
        ActionChains(browser).move_to_element_with_offset(plot, int((45.5 / 90 - 0.5) * width), 0).click().perform()
        wait_for(browser, "return document.body.dataset.seekedTo === '45'")
        time_s = browser.execute_script("return document.getElementById('video').currentTime")
        assert abs(time_s - 45.5 / 30) < 1e-3
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT, "o")  # one frame on, onset here
        wait_for(browser, "return document.getElementById('frame-info').dataset.frame === '46'")

        marks = browser.find_element(By.ID, "marks")  # click the source at pixel (20, 30)
        r = marks.rect
        dx, dy = (20.5 / W - 0.5) * r["width"], (30.5 / H - 0.5) * r["height"]
        ActionChains(browser).move_to_element_with_offset(marks, round(dx), round(dy)).click().perform()
        browser.find_element(By.ID, "save").click()
        wait_for(browser, "return document.getElementById('status').textContent === 'saved labels.json'")
        browser.save_screenshot(str(tmp_path / "review.png"))
        assert browser.execute_script("return window.cspViolations") == []  # the page lives under its CSP
    finally:
        server.shutdown()
        server.server_close()

    labels = json.loads((run / "labels.json").read_text())
    assert labels["onset_frame"] == 46
    x, y = labels["source"]
    px = W / r["width"]  # one screen pixel in video pixels; clicks land on whole screen pixels
    assert abs(x - 20) <= 1.5 * px and abs(y - 30) <= 1.5 * px
    assert list(labels["points"]) == ["60"]  # the run's track point 30 frames after its onset stays


def attacker_page(target: str) -> ThreadingHTTPServer:
    """A page of another origin (another port) that frames the review page full size."""
    page = (f'<!doctype html><iframe id="victim" src="{target}" width="1200" height="850"></iframe>'
            '<script>document.getElementById("victim").onload = () => { document.body.dataset.framed = "1"; };'
            '</script>').encode()

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    return serve(ThreadingHTTPServer(("127.0.0.1", 0), Attacker))


def click_no_bleeding_and_save(browser) -> None:
    """The clickjacking of the review page: a click into the frame, then N (no bleeding), S (save)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    frame = browser.find_element(By.ID, "victim")
    ActionChains(browser).move_to_element(frame).click().send_keys("n").pause(0.2).send_keys("s").perform()


@pytest.mark.parametrize("protected", [True, False], ids=["shipped", "without-frame-headers"])
def test_other_origin_cannot_frame_and_click_the_page(tmp_path, browser, monkeypatch, protected):
    """With the shipped headers the framed page stays blank and the clicks change nothing; the same
    attack on a server without X-Frame-Options/frame-ancestors shows the page and saves "no bleeding"
    (which shows the attack is real here)."""
    from selenium.webdriver.common.by import By
    if not protected:
        headers = {k: v for k, v in server_mod.SECURITY_HEADERS.items() if k != "X-Frame-Options"}
        headers["Content-Security-Policy"] = "default-src 'self'"
        monkeypatch.setattr(server_mod, "SECURITY_HEADERS", headers)
    run = make_run(tmp_path, n=90, onset=30)
    review = serve(ReviewServer(ReviewRun(run), 0))
    attacker = attacker_page(review.url)
    try:
        browser.get(f"http://localhost:{attacker.server_address[1]}/")
        wait_for(browser, "return document.body.dataset.framed")
        browser.switch_to.frame(browser.find_element(By.ID, "victim"))
        shown = bool(browser.find_elements(By.ID, "save"))
        if shown:
            wait_for(browser, "return document.body.dataset.ready")
        browser.switch_to.default_content()
        click_no_bleeding_and_save(browser)
        if protected:
            time.sleep(1.0)  # time for a save to land, had the clicks reached the page
        else:
            end = time.monotonic() + 10
            while not (run / "labels.json").exists() and time.monotonic() < end:
                time.sleep(0.05)
    finally:
        review.shutdown()
        review.server_close()
        attacker.shutdown()
        attacker.server_close()
    if protected:
        assert not shown and not (run / "labels.json").exists()
    else:
        assert shown and json.loads((run / "labels.json").read_text())["onset_frame"] is None
