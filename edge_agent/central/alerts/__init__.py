"""Alerts, as the seed describes them: when a stored hit's indicator names notify targets,
the hub sends the indicator's instructions with the truck, site, lane, channel and
matched values by e-mail (SMTP with STARTTLS through a relay) and by SMS (an HTTP
gateway). `message` plans them (pure), `dispatcher` sends them with retries and a rate
limit, `smtp` and `sms_gateway` speak to the outside. The delivery log is in the ledger.
"""

from edge_agent.errors import AgentError


class DeliveryFailed(AgentError, RuntimeError):
    """One attempt to deliver an alert did not go through; the dispatcher decides what next."""
