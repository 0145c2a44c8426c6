"""ClickHouse DDL (*.sql), shipped as package data so a wheel install can apply it too."""
