"""Trade sources (the TradeSource port): the Dome API and Polymarket's Data API, over one HTTP client
(http.py) and one client-side limiter (limiter.py). Built from settings by shared.bootstrap.make_source."""
