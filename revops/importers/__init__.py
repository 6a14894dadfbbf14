"""Importers: other tools' fee configs as revops policy folders (`revops import ...`)."""
