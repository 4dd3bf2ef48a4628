"""The lane's gate through gpiozero: barrier, lights, sign, alarm, loop detectors.

controller.py  GateController: commands in, events out, fail-safe supervision
loops.py       loop-detector sequences to movements, debouncing (pure)
pinmap.py      board and HAT pin maps, wiring validation
pins.py        the pin factory and the pins opened as gpiozero devices (controller and bench)
cli.py         `edge-agent gpio test` for technicians
"""
