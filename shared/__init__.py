"""Everything the functions share: config, tenancy, errors, schemas, state, catalog."""
