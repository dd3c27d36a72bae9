"""The documentation site's reference pages, generated from the declarations they describe:
the settings model, the OpenAPI document and the Avro schemas."""
