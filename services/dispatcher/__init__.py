"""The dispatcher: what Cloud Scheduler calls. Publishes one WalletTask per unchecked wallet."""
