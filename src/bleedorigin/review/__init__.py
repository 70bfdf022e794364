"""`bleedorigin review`: check and correct one run in the browser (server, page, labels.json),
and `bleedorigin data import-review`: turn the corrections into benchmark clips."""
