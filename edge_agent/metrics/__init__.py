"""The site's figures for a monitoring system, served whether or not the console runs.

exposition.py   SiteFigures (what the agent reports of itself) -> the Prometheus text
server.py       the page on its own port (loopback, or a bearer token)
"""
