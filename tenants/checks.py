"""System checks of the tenancy set-up (ids tenants.E0xx / tenants.W0xx)."""
