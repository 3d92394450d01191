package provider

// RequestStats counts what a provider client has done since it was made,
// for metrics and `watcher bench`. Clients return it from RequestStats.
type RequestStats struct {
	Requests  int64 // HTTP requests sent, retries included
	Pages     int64 // listing pages fetched and accepted
	Throttled int64 // answers that said the provider is throttling us
	// Rate is the request rate now allowed (requests per second); 0 means
	// not limited (the adaptive rate has not been throttled yet and no
	// ceiling is configured).
	Rate float64
	// Concurrency is the number of requests now allowed in flight.
	Concurrency int
}
