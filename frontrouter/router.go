package frontrouter

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellarsim/cellar/cell"
)

// HeaderGateway is the response header in which the router names the gateway (by its
// place in the fleet, "gateway-3") that answered. It is added to the response only:
// the request goes on as it came.
const HeaderGateway = "X-Cellar-Gateway"

// Options configure a Router.
type Options struct {
	// Topology gives the tenants, the sharding mode and the shard size, and whether
	// requests must be signed (Auth).
	Topology cell.Topology
	// Backends are the S3 addresses (host:port) of the gateways, in the fleet's order:
	// Backends[i] is gateway i of the shards.
	Backends []string
	// Logger (default slog.Default()) and Registerer (nil: no metrics).
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// DownFor is how long a gateway that refused a connection is tried after the
	// others of a shard (default 1s).
	DownFor time.Duration
	// Transport forwards the requests (default: NewFastTransport(), HTTP/1.1 without
	// compression or proxy, bodiless requests without net/http's hand-offs).
	Transport http.RoundTripper
}

// Router is the front router as an http.Handler: it reads a request's access key,
// picks one gateway of the key's tenant's shard and forwards the request to it
// unchanged (method, Host, path and query as sent, every header, the body streamed),
// then streams the answer back. It parses nothing else of the request.
type Router struct {
	opts     Options
	tenantOf map[string]int // access key → tenant index
	names    []string
	shards   [][]int
	all      []int
	backends []*backend
	tr       http.RoundTripper
	log      *slog.Logger
	m        *metrics
}

type backend struct {
	addr      string
	name      string
	downUntil atomic.Int64 // unix nanoseconds
}

// New builds a router over opts.Backends for the tenants and sharding of opts.Topology.
func New(opts Options) (*Router, error) {
	t := opts.Topology
	if len(opts.Backends) == 0 {
		return nil, errors.New("router: no gateways to forward to")
	}
	if len(opts.Backends) != t.Gateways {
		return nil, fmt.Errorf("router: %d gateway addresses for a topology of %d gateways", len(opts.Backends), t.Gateways)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DownFor <= 0 {
		opts.DownFor = time.Second
	}
	shards, err := Shards(t.ShardingMode(), len(t.Tenants), t.Gateways, t.TenantShardSize())
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{opts: opts, tenantOf: map[string]int{}, shards: shards, log: opts.Logger, m: newMetrics(opts.Registerer)}
	for i, tn := range t.Tenants {
		r.tenantOf[tn.AccessKey] = i
		r.names = append(r.names, tn.Name)
	}
	for i, a := range opts.Backends {
		r.backends = append(r.backends, &backend{addr: a, name: cell.NodeID("", cell.RoleGateway, i)})
		r.all = append(r.all, i)
	}
	r.tr = opts.Transport
	if r.tr == nil {
		r.tr = NewFastTransport()
	}
	return r, nil
}

// NewTransport is the transport a router forwards requests with a body with: no
// proxy, no compression (a response goes back byte for byte), HTTP/1.1, many idle
// connections per gateway.
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression:    true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // a slow answer is the gateway's to time out
	}
}

// Shard returns the gateway indexes of the tenant with this access key, and the
// tenant's name ("" for a key that is no tenant's: it may use every gateway).
func (rt *Router) Shard(accessKey string) (gateways []int, tenant string, known bool) {
	if i, ok := rt.tenantOf[accessKey]; ok {
		return rt.shards[i], rt.names[i], true
	}
	return rt.all, "", accessKey == "" || accessKey == rt.opts.Topology.AccessKey || !rt.opts.Topology.Auth
}

// ServeHTTP forwards r to a gateway of its tenant's shard.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := AccessKey(r)
	shard, tenant, known := rt.Shard(key)
	label := tenant
	if label == "" {
		label = noTenant
	}
	if !known {
		rt.m.request(label, "InvalidAccessKeyId")
		writeError(w, r, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return
	}
	for _, h := range hopHeaders {
		r.Header.Del(h)
	}
	body := newSharedBody(r.Body)
	defer body.close()
	now := time.Now().UnixNano()
	// Start at a random gateway of the shard; gateways that refused a connection
	// lately go last.
	order := make([]int, 0, len(shard))
	var later []int
	off := rand.IntN(len(shard))
	for i := range shard {
		g := shard[(off+i)%len(shard)]
		if rt.backends[g].downUntil.Load() > now {
			later = append(later, g)
		} else {
			order = append(order, g)
		}
	}
	order = append(order, later...)
	var lastErr error
	for attempt, g := range order {
		b := rt.backends[g]
		if attempt > 0 {
			rt.m.retry(label)
		}
		resp, err := rt.tr.RoundTrip(rt.outgoing(r, b, body.attempt(attempt)))
		if err == nil {
			rt.m.request(label, "forwarded")
			rt.copyResponse(w, resp, b)
			return
		}
		lastErr = err
		if r.Context().Err() != nil {
			rt.m.request(label, "ClientClosedRequest")
			return
		}
		if isDialError(err) {
			b.downUntil.Store(time.Now().Add(rt.opts.DownFor).UnixNano())
		}
		// Another gateway may have it only if nothing of the body went to this one
		// and no answer came back: a refused connection, or one that broke before
		// any byte of an answer.
		if !body.untouched(attempt) {
			break
		}
		rt.log.Debug("router: gateway failed before answering, trying another of the shard",
			"gateway", b.name, "tenant", tenant, "err", err)
	}
	rt.m.request(label, "ServiceUnavailable")
	rt.log.Warn("router: no gateway of the shard answered", "tenant", tenant, "shard", shardNames(rt, shard), "err", lastErr)
	w.Header().Set("Retry-After", "1")
	writeError(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", "No gateway of this tenant's shard is reachable. Please retry.")
}

func shardNames(rt *Router, shard []int) string {
	var s []string
	for _, g := range shard {
		s = append(s, rt.backends[g].name)
	}
	return strings.Join(s, ",")
}

// outgoing is r as sent to gateway b: the same method, Host, path (byte for byte as
// the client sent it), query, headers but the hop-by-hop ones, and body.
func (rt *Router) outgoing(r *http.Request, b *backend, body io.ReadCloser) *http.Request {
	// A shallow copy: the incoming request is the router's own, so its header map
	// (hop-by-hop headers already gone, see ServeHTTP) is forwarded as it is, not
	// copied per attempt; no attempt writes to it. (ServeHTTP deleting those headers
	// from the request it was given goes against http.Handler's advice; the server
	// has read what it needs of them before the handler runs, and the request is not
	// used after it.)
	out := new(http.Request)
	*out = *r
	out.RequestURI = ""
	u := &url.URL{Scheme: "http", Host: b.addr, RawQuery: r.URL.RawQuery}
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "//") {
		u.Opaque = path
	} else {
		u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	}
	out.URL = u
	out.Host = r.Host
	out.Close = false
	if r.Body == nil || r.Body == http.NoBody {
		out.Body = nil
	} else {
		out.Body = body
	}
	return out
}

// hopHeaders belong to one connection and are not forwarded (RFC 9110, 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Upgrade"}

func (rt *Router) copyResponse(w http.ResponseWriter, resp *http.Response, b *backend) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Set(HeaderGateway, b.name)
	w.WriteHeader(resp.StatusCode)
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	flush := resp.ContentLength < 0
	rc := http.NewResponseController(w)
	for {
		n, err := resp.Body.Read(*buf)
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return // the client went away
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			// The gateway broke off mid-answer: break the client's connection too, so
			// that it sees a cut answer, not a short one.
			panic(http.ErrAbortHandler)
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// sharedBody is the request body shared by the attempts of one request: an attempt
// reads it only while it is the current one, and the next attempt may start only if
// no byte of it was read (a transport may still be reading for an attempt it gave up).
type sharedBody struct {
	mu      sync.Mutex
	r       io.ReadCloser
	current int
	read    bool
}

func newSharedBody(r io.ReadCloser) *sharedBody { return &sharedBody{r: r} }

// attempt returns the body for attempt i, which becomes the current one.
func (s *sharedBody) attempt(i int) io.ReadCloser {
	s.mu.Lock()
	s.current = i
	s.mu.Unlock()
	return attemptBody{s, i}
}

// untouched reports whether no byte of the body has been read, and closes attempt i
// off from it.
func (s *sharedBody) untouched(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == i {
		s.current = -1
	}
	return !s.read
}

func (s *sharedBody) close() {
	if s.r != nil {
		s.r.Close()
	}
}

type attemptBody struct {
	s *sharedBody
	i int
}

var errAttemptOver = errors.New("router: this attempt is over")

func (a attemptBody) Read(p []byte) (int, error) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.s.current != a.i || a.s.r == nil {
		return 0, errAttemptOver
	}
	n, err := a.s.r.Read(p)
	if n > 0 {
		a.s.read = true
	}
	return n, err
}

// Close does nothing: the body belongs to the request, closed once it is answered.
func (attemptBody) Close() error { return nil }

// AccessKey returns the access key a request says it is signed with, and nothing
// else of it: from the Authorization header (AWS Signature Version 4
// "Credential=AKID/..." or Version 2 "AWS AKID:...") or from the presigned query
// (X-Amz-Credential or AWSAccessKeyId). "" when it names none. The signature is the
// gateway's to check.
func AccessKey(r *http.Request) string {
	if v := r.Header.Get("Authorization"); v != "" {
		if rest, ok := strings.CutPrefix(v, "AWS4-HMAC-SHA256 "); ok {
			_, cred, ok := strings.Cut(rest, "Credential=")
			if !ok {
				return ""
			}
			ak, _, _ := strings.Cut(cred, "/")
			return strings.TrimSpace(ak)
		}
		if rest, ok := strings.CutPrefix(v, "AWS "); ok {
			ak, _, _ := strings.Cut(rest, ":")
			return strings.TrimSpace(ak)
		}
		return ""
	}
	raw := r.URL.RawQuery
	if !strings.Contains(raw, "X-Amz-Credential=") && !strings.Contains(raw, "AWSAccessKeyId=") {
		return ""
	}
	q, _ := url.ParseQuery(raw)
	if cred := q.Get("X-Amz-Credential"); cred != "" {
		ak, _, _ := strings.Cut(cred, "/")
		return ak
	}
	return q.Get("AWSAccessKeyId")
}

type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

// writeError answers with an S3 error document, from the router itself.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	id := fmt.Sprintf("%016X", rand.Uint64())
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("x-amz-request-id", id)
	h.Set("x-cellar-cell", "none")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	b, _ := xml.Marshal(s3Error{Code: code, Message: msg, Resource: r.URL.Path, RequestID: id})
	io.WriteString(w, xml.Header)
	w.Write(b)
}

const noTenant = "-"

type metrics struct {
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellar_router_requests_total",
			Help: `Requests the front router handled, by tenant ("-" for a key that is no tenant's) and outcome ` +
				`("forwarded", "InvalidAccessKeyId", "ServiceUnavailable" when no gateway of the shard answered, "ClientClosedRequest").`,
		}, []string{"tenant", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellar_router_retries_total",
			Help: "Requests the front router sent again to another gateway of the tenant's shard, the first having failed before it took any of the request's body or answered.",
		}, []string{"tenant"}),
	}
	reg.MustRegister(m.requests, m.retries)
	return m
}

func (m *metrics) request(tenant, outcome string) {
	if m != nil {
		m.requests.WithLabelValues(tenant, outcome).Inc()
	}
}

func (m *metrics) retry(tenant string) {
	if m != nil {
		m.retries.WithLabelValues(tenant).Inc()
	}
}
