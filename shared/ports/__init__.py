"""The ports, side by side, with their value types; each names its adapters.

    port              module                 adapters (shared/adapters/...)
    Warehouse         ports/warehouse.py     local/duckdb.py DuckDBWarehouse, gcp/bigquery.py BigQueryWarehouse
    DeadLetterStore   ports/deadletters.py   sql/deadletters.py SqlDeadLetters (on either warehouse)
    DeadLetterSink    ports/deadletters.py   the store, or gcp/pubsub.py PubSubDeadLetterSink
    DeadLetterInbox   ports/deadletters.py   gcp/pubsub.py PubSubDeadLetterInbox, EmptyInbox
    Publisher         ports/publisher.py     local/bus.py Bus, gcp/pubsub.py PubSubPublisher
    ObjectStore       ports/objectstore.py   local/files.py LocalObjectStore, gcp/storage.py GcsObjectStore
    TradeSource       ports/source.py        sources/dome.py DomeSource, sources/polymarket.py PolymarketSource
    TradeCounter      ports/source.py        sources/dome.py DomeSource (the Data API gives no total)
    Clock             ports/clock.py         clock.py SystemClock

Where they are wired: shared/bootstrap.py, the one composition root.
"""
