"""An upstream service, as the old SalesFlow backend's ``LeadService`` was, written against the outbox:
the ``leads`` row and its ``lead.created`` event are committed in one transaction, or neither is."""
