// Package s3bench measures cellar's S3 data path against the machine's floor, for
// `cellctl bench s3`.
//
// Run sends PUTs, then GETs, of objects of each given size, from a fixed number of
// concurrent clients, for a fixed time each, to two targets in turn:
//
//   - cellar: the S3 endpoint of a running cluster (gateway, placement, the storage
//     nodes of every copy, the index's replicated commit);
//   - the reference: a Reference server in this process that keeps each object as one
//     file on the same disk, fsynced, and reads it back. It answers through the same S3
//     protocol code as cellar's gateway (package gateway/s3: signatures, aws-chunked
//     bodies, checksums), so the two differ only in what happens behind the protocol:
//     one durable copy in a local file, against cellar's cell. It is a floor to measure
//     against, not a product: no listing, no multipart, no second copy, its object
//     table lives in memory.
//
// The targets are measured in interleaved passes (reference, cellar, reference,
// cellar, ...) and each figure is the median over the passes, so that a machine
// whose load changes during the run moves both sides alike; every cellar figure is
// also given as a ratio to the reference's in the same run.
//
//	ref, err := s3bench.StartReference(dir, accessKey, secretKey, region)
//	...
//	rep, err := s3bench.Run(ctx, s3bench.Options{
//		Endpoint: "http://127.0.0.1:9000", AccessKey: ak, SecretKey: sk,
//		Sizes: []int64{4 << 10, 1 << 20}, Concurrency: 16, Duration: 20 * time.Second,
//		Reference: ref, Progress: os.Stderr,
//	})
//	if err == nil {
//		err = s3bench.WriteTable(os.Stdout, rep)
//	}
package s3bench
