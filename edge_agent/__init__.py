"""Edge agent for customs border crossing points: devices in, decisions and gate out."""

__version__ = "0.1.0"
