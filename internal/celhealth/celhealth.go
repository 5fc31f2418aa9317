// Package celhealth compiles and evaluates the CEL expressions of a
// Kustomization: spec.healthCheckExprs (custom health of objects of an
// apiVersion/kind) and spec.dependsOn[].readyExpr, with the environment
// and rules Flux documents. The expressions are tenant input: their size
// and their evaluation cost are bounded.
package celhealth

import (
	"context"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

const (
	// MaxExprLen bounds an expression's size in code points.
	MaxExprLen = 4096
	// MaxCost bounds the runtime cost of one evaluation (cel-go's
	// cost units: about one per value visited).
	MaxCost = 1_000_000
	// interruptEvery is how many comprehension iterations pass between
	// checks of the context.
	interruptEvery = 100
)

// Expr is a compiled expression.
type Expr struct {
	src  string
	prog cel.Program
}

// String returns the expression's source.
func (e *Expr) String() string { return e.src }

// compile builds src in Flux's environment. With vars, the expression is
// type-checked against them (each a google.protobuf.Struct, i.e. a JSON
// object) and must yield a bool; without, it is only parsed and its free
// names resolve at evaluation (the top-level fields of the object).
func compile(src string, vars ...string) (*Expr, error) {
	if n := len([]rune(src)); n > MaxExprLen {
		return nil, fmt.Errorf("expression is %d characters long, more than the limit of %d", n, MaxExprLen)
	}
	opts := []cel.EnvOption{
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
		cel.ParserExpressionSizeLimit(MaxExprLen),
	}
	for _, v := range vars {
		opts = append(opts, cel.Variable(v, cel.ObjectType("google.protobuf.Struct")))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	var ast *cel.Ast
	var iss *cel.Issues
	if len(vars) > 0 {
		ast, iss = env.Compile(src)
	} else {
		ast, iss = env.Parse(src)
	}
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("failed to parse the CEL expression %q: %s", src, iss.String())
	}
	if len(vars) > 0 && ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("CEL expression %q yields %s, want bool", src, ast.OutputType())
	}
	prog, err := env.Program(ast,
		cel.EvalOptions(cel.OptOptimize),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.CostLimit(MaxCost))
	if err != nil {
		return nil, fmt.Errorf("CEL program for %q: %w", src, err)
	}
	return &Expr{src: src, prog: prog}, nil
}

// Bool evaluates e with vars and requires a bool result.
func (e *Expr) Bool(ctx context.Context, vars map[string]any) (bool, error) {
	val, _, err := e.prog.ContextEval(ctx, vars)
	if err != nil {
		return false, fmt.Errorf("failed to evaluate the CEL expression %q: %w", e.src, err)
	}
	b, ok := val.(types.Bool)
	if !ok {
		return false, fmt.Errorf("CEL expression %q did not evaluate to a bool", e.src)
	}
	return bool(b), nil
}

// ReadyExpr compiles a dependsOn[].readyExpr: variables self (the
// dependent Kustomization) and dep (the dependency), a bool result.
func ReadyExpr(src string) (*Expr, error) {
	return compile(src, "self", "dep")
}

// Ready evaluates a readyExpr against the two objects (as from
// runtime.DefaultUnstructuredConverter).
func (e *Expr) Ready(ctx context.Context, self, dep map[string]any) (bool, error) {
	return e.Bool(ctx, map[string]any{"self": self, "dep": dep})
}
