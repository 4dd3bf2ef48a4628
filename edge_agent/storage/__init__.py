"""The site's storage over a year unattended: the reserve that lets the core finish
what it started when the disk fills.

reserve.py   a file allocated at start and given back when a commit fails for space
"""
