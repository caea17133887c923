"""The library the dispatcher, fetcher, loader and the embedded runner share."""
