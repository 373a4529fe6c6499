"""Chat-platform and helpdesk adapters: native events in, contract events out.

- ``rasa``: Rasa's Kafka event broker tracker events -> contract events (pure);
  ``bridge``: the Kafka consumer/producer that runs it (``handoff rasa``).
- ``webhooks``: Zendesk and Intercom ticket-status webhooks, signature-verified, ->
  ``ticket_status_changed`` (``handoff ingest``).
"""
