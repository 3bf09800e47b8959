"""Integration tests against real processes (Tomcat, Apache httpd, twistd) on loopback."""
