"""The operators' tools on the mirror: ``backfill`` (with ``backfill_pages``, the page writers)
mirrors Stripe's lists, resumably, at the API's limit; ``replay`` stores the events of Stripe's
30-day window that never arrived. (Reconciling orders with Stripe is the shop's: ``orders.reconcile``.)"""
