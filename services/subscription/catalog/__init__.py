"""The demo catalog as data (rules §10): `demo_catalog.json`, read by `domain.catalog.demo_data`."""
