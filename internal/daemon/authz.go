package daemon

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/pki"
)

// Roles as certificates name them.
const (
	roleIndex     = string(cell.RoleIndex)
	rolePlacement = string(cell.RolePlacement)
	roleStorage   = string(cell.RoleStorage)
	roleGateway   = string(cell.RoleGateway)
	roleObserver  = string(cell.RoleObserver)
	roleMap       = string(cell.RoleMap)
	roleOperator  = pki.RoleOperator
	roleSuper     = pki.RoleSupervisor
)

// anyRole is every role a certificate can name.
var anyRole = []string{roleIndex, rolePlacement, roleStorage, roleGateway, roleObserver, roleOperator, roleMap, roleSuper}

// Callers is who may call each gRPC method a daemon serves over mutual TLS, by the
// role in the caller's certificate: a full method name ("/cellar.v1.Storage/Read"),
// or a service ("/cellar.v1.Index/") for all its methods. A method found in neither is
// refused to everyone. It follows the data path: the gateway reads and writes through
// the index, placement and storage; the placement node asks storage nodes whether they
// are healthy, and runs its cell's repair (the index's List and Commit, storage's
// Read, Write and Delete, each storage node's Blobs inventory); the operator's tools
// (cellctl, benchmarks) may call what a gateway may, ask the repair loop, and are the
// only ones that may change an index group's membership or leader. The cell map is
// read by gateways, observers and operators, and changed by gateways (the buckets they
// create and delete) and the mover. The mover runs behind the supervisor's control
// endpoint, through the guardrail workflow, with the supervisor's certificate: it
// reads and writes as a gateway does, and it alone may fence and drop a bucket in an
// index; the operator's certificate may not, so a move cannot skip the guardrails.
var Callers = map[string][]string{
	"/cellar.v1.Index/":                       {roleGateway, rolePlacement, roleOperator, roleSuper},
	"/cellar.v1.Index/FenceBucket":            {roleSuper},
	"/cellar.v1.Index/DropBucket":             {roleSuper},
	"/cellar.v1.Placement/Allocate":           {roleGateway, roleOperator, roleSuper},
	"/cellar.v1.Storage/":                     {roleGateway, rolePlacement, roleOperator, roleSuper},
	"/cellar.v1.Blobs/":                       {rolePlacement, roleOperator},
	"/cellar.v1.Repair/":                      {roleOperator},
	"/cellar.v1.CellMap/Get":                  {roleGateway, roleObserver, roleOperator, roleSuper},
	"/cellar.v1.CellMap/Apply":                {roleGateway, roleSuper},
	"/cellar.v1.NodeAdmin/Status":             anyRole,
	"/cellar.v1.NodeAdmin/GroupStatus":        anyRole,
	"/cellar.v1.NodeAdmin/AddVoter":           {roleOperator},
	"/cellar.v1.NodeAdmin/RemoveServer":       {roleOperator},
	"/cellar.v1.NodeAdmin/TransferLeadership": {roleOperator},
	"/grpc.health.v1.Health/":                 anyRole,
}

// allowedRoles is the Callers entry of a method: its own, or its service's.
func allowedRoles(method string) ([]string, bool) {
	if r, ok := Callers[method]; ok {
		return r, true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		r, ok := Callers[method[:i+1]]
		return r, ok
	}
	return nil, false
}

// authorize decides whether the peer of ctx may call method on a node of cell
// nodeCell: its certificate's role must be among the method's callers, and a caller
// that belongs to a cell may call only nodes of its own cell (nothing in one cell
// calls another cell).
func authorize(ctx context.Context, method, nodeCell string) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer on this call")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return status.Error(codes.Unauthenticated, "the call did not come over mutual TLS")
	}
	id, err := pki.PeerIdentity(info.State)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "the caller's certificate names no cellar identity: %v", err)
	}
	roles, ok := allowedRoles(method)
	if !ok || !slices.Contains(roles, id.Role) {
		return status.Errorf(codes.PermissionDenied, "role %s (%s) may not call %s", id.Role, id.Node, method)
	}
	if id.Cell != "" && nodeCell != "" && id.Cell != nodeCell {
		return status.Errorf(codes.PermissionDenied, "role %s (%s) of %s may not call %s on a node of %s", id.Role, id.Node, id.Cell, method, nodeCell)
	}
	return nil
}

// authz checks every call a daemon serves against Callers.
type authz struct{ cell string }

func (a authz) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := authorize(ctx, info.FullMethod, a.cell); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a authz) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := authorize(ss.Context(), info.FullMethod, a.cell); err != nil {
		return err
	}
	return h(srv, ss)
}
