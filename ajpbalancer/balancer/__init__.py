"""Balancer logic without I/O: lbmethods and the counters they work on."""

from __future__ import annotations

from ajpbalancer.balancer._lbmethods import LBMETHODS, LBMethod, LBState, byrequests, lbfactor

__all__ = ["LBMETHODS", "LBMethod", "LBState", "byrequests", "lbfactor"]
