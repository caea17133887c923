"""The fetcher: receives WalletTask pushes, pages the trade API into a part file, publishes FileReady."""
