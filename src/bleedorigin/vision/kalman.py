"""Constant-velocity Kalman filtering and Rauch-Tung-Striebel smoothing of 2-D point paths
(filterpy). Used to smooth pseudo-label tracks towards a trusted end point (paper Fig. 8)."""
from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter


def cv_filter(process_var: float = 0.05, meas_var: float = 5.0, init_var: float = 1000.0) -> KalmanFilter:
    """State (x, vx, y, vy), measurement (x, y), unit time step."""
    kf = KalmanFilter(dim_x=4, dim_z=2)
    kf.F = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], float)
    kf.H = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], float)
    q = np.array([[0.25, 0.5], [0.5, 1.0]]) * process_var  # discrete white-noise acceleration
    kf.Q = np.zeros((4, 4))
    kf.Q[:2, :2] = q
    kf.Q[2:, 2:] = q
    kf.R = np.eye(2) * meas_var
    kf.P = np.eye(4) * init_var
    return kf


def rts_smooth(points: np.ndarray, meas_var: float | np.ndarray = 5.0, process_var: float = 0.05,
               init_var: float = 1000.0) -> np.ndarray:
    """Smooth a path (T, 2) with a forward Kalman pass and the RTS backward pass.

    `meas_var` is a scalar or per-frame (T,) measurement variance (px^2): a tiny value pins the
    path to that measurement (e.g. an annotated end point); NaN rows are missing measurements.
    """
    pts = np.asarray(points, float)
    n = len(pts)
    if n == 0:
        return pts.copy()
    var = np.broadcast_to(np.asarray(meas_var, float), (n,))
    first = int(np.flatnonzero(np.isfinite(pts).all(1))[0]) if np.isfinite(pts).all(1).any() else None
    if first is None:
        raise ValueError("rts_smooth: no finite measurement")
    kf = cv_filter(process_var, float(var[first]), init_var)
    kf.x = np.array([[pts[first, 0]], [0.0], [pts[first, 1]], [0.0]])
    zs = [None if not np.isfinite(p).all() else p.reshape(2, 1) for p in pts]
    rs = [np.eye(2) * max(float(v), 1e-9) for v in var]
    mu, cov, _, _ = kf.batch_filter(zs, Rs=rs)
    xs, _, _, _ = kf.rts_smoother(mu, cov)
    xs = xs.reshape(n, 4)
    return np.stack([xs[:, 0], xs[:, 2]], -1)
