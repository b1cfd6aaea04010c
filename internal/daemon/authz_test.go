package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cellarsim/cellar/internal/pki"
)

// peerOf is a call's context as it comes over mutual TLS from the holder of the
// certificate name of the PKI in dir.
func peerOf(t *testing.T, dir, name string) context.Context {
	t.Helper()
	f := pki.Dir(dir).Files(name)
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	state := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}
	return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		AuthInfo: credentials.TLSInfo{State: state}})
}

// Only the supervisor, which runs moves through the guardrail workflow, may fence and
// drop a bucket in an index; the cell map is changed by it and by gateways (bucket
// creation and deletion), not by the operator's certificate, which may still read it.
func TestAuthzOfTheMoveCalls(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{Cluster: "authz", Members: []pki.Member{
		{Identity: pki.Identity{Role: pki.RoleSupervisor, Node: pki.RoleSupervisor}},
		{Identity: pki.Identity{Role: roleGateway, Node: "gateway-0"}},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cert, method string
		want         codes.Code
	}{
		{pki.OperatorName, "/cellar.v1.CellMap/Apply", codes.PermissionDenied},
		{pki.OperatorName, "/cellar.v1.Index/FenceBucket", codes.PermissionDenied},
		{pki.OperatorName, "/cellar.v1.Index/DropBucket", codes.PermissionDenied},
		{pki.OperatorName, "/cellar.v1.CellMap/Get", codes.OK},
		{pki.OperatorName, "/cellar.v1.Index/List", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.CellMap/Apply", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.CellMap/Get", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.Index/FenceBucket", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.Index/DropBucket", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.Index/List", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.Storage/Write", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.Placement/Allocate", codes.OK},
		{pki.RoleSupervisor, "/cellar.v1.NodeAdmin/RemoveServer", codes.PermissionDenied},
		{"gateway-0", "/cellar.v1.CellMap/Apply", codes.OK},
		{"gateway-0", "/cellar.v1.Index/FenceBucket", codes.PermissionDenied},
	} {
		err := authorize(peerOf(t, dir, tc.cert), tc.method, "cell-0")
		if got := status.Code(err); got != tc.want {
			t.Errorf("%s calls %s: %v (%v), want %v", tc.cert, tc.method, got, err, tc.want)
		}
	}
}
