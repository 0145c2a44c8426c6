"""Avro schemas (*.avsc) of every lifemon record and the pydantic models that mirror them."""
