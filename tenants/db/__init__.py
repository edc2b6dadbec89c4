"""Tenant databases, one concern a module:

- `aliases`: a tenant's `DATABASES` entry, registered lazily under `tenant_<slug>`;
- `connections`: this thread's tenant connections, bounded by `TENANT_MAX_OPEN_CONNECTIONS`;
- `servers`: the server-level operations provisioning needs (create, clone, drop), one
  module per backend (`servers.postgresql`, `servers.sqlite`);
- `breaker`: the circuit breaker for a tenant database that refuses connections.
"""
