// Package frontrouter is the front router: the thin layer before a fleet of stateless
// gateways that picks a tenant's gateways from the request's access key and forwards
// the request to one of them as it came.
//
// It reads the access key (the Authorization header's Credential, or the presigned
// query's X-Amz-Credential or AWSAccessKeyId) and nothing else: not the path, not
// the other headers, not the body. The signature stays valid because nothing it covers
// changes (Host, path, query and headers go on byte for byte), and a request that
// crashes whatever parses it (a poison pill) passes through the router harmlessly.
// An unknown key is answered 403 InvalidAccessKeyId by the router itself.
//
// A request that fails on one gateway before the gateway took any byte of its body
// or answered (a refused connection, one reset before the answer) is sent to another
// gateway of the shard; anything else goes back to the client as it happened.
//
// Requests without a body (GET, HEAD, DELETE) go to the gateway by the router's own
// HTTP/1.1 client (Transport), on the goroutine that serves the client: net/http's
// Transport would hand each to a writing goroutine and its answer back from a
// reading one, wake-ups that are a good part of the hop on a small GET (see
// docs/sharding.md, "Router overhead"). Requests with a body go
// by net/http's Transport, which handles an answer that comes before the body is
// sent.
//
// Shards assigns tenants to gateways in three modes (all, plain and shuffle sharding)
// and Blast computes what losing one tenant's shard costs the others.
//
//	rt, err := frontrouter.New(frontrouter.Options{Topology: topo, Backends: addrs})
//	http.ListenAndServe(":9000", rt)
//
// Run runs it as a daemon (cmd/routerd, 'cellctl daemon router'), which 'cellctl up'
// starts before the gateways when the topology has routers.
package frontrouter
