"""Reference CRM core speaking Open311 GeoReport v2, used by Kanal's demo and tests.

``crm_sim.app.create_app`` builds the ASGI app, ``crm_sim.server`` runs it (blocking ``serve``/``main``,
or ``RunningCRMSim`` in a background thread for tests).
"""
