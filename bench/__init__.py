"""Benchmarks of ajpbalancer against Tomcat direct, Apache httpd and Twisted's own proxy.

Run from the checkout root: ``python -m bench.protocols`` (see ``bench/README.md``).
"""

from __future__ import annotations
