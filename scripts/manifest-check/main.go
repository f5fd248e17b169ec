// Command manifest-check decodes Kubernetes, Prometheus Operator and Istio objects strictly, into the Go types
// that the API server, the Prometheus Operator and istiod decode them into, and reports every unknown field,
// duplicate field and wrong type.
//
// The schemas in the npm packages the tests also use (kubernetes-models) check types, required fields and
// enums, but accept unknown fields, because Kubernetes' OpenAPI documents do not forbid them; the API server
// does (strict field validation, the kubectl default since Kubernetes 1.27), by decoding into its Go types.
// This command does the same with k8s.io/api, with the Prometheus Operator's monitoring.coreos.com/v1 types
// (PodMonitor, ServiceMonitor, PrometheusRule: the Go types its CustomResourceDefinitions are generated from),
// and with istio.io/api's protobuf types and protojson, which
// istiod uses to read the mesh config and AuthorizationPolicy specs.
//
// Input (stdin): a JSON array of {"id": "...", "object": {...}}, each object one manifest document.
// Output (stdout): a JSON array of {"id", "kind", "status": "ok" | "invalid" | "unknown_kind", "errors"}.
// Exit status: 0 when the input could be read, whatever the verdicts (the caller asserts on them); 2 otherwise.
// Built by scripts/install-deploy-tools.sh into .tools/bin/manifest-check; used by test/integration/deploy-*.test.ts.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

type input struct {
	ID     string          `json:"id"`
	Object json.RawMessage `json:"object"`
}

type verdict struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Status string   `json:"status"`
	Errors []string `json:"errors"`
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// kubernetesTypes are the built-in kinds the manifests use, decoded as the API server decodes them.
var kubernetesTypes = map[string]func() any{
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	// The Prometheus Operator's kinds (deploy/kubernetes/monitoring, deploy/monitoring/prometheus-rule.yaml):
	// custom resources, which the API server checks against their CRD schemas, generated from these types.
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

// strictKubernetes decodes like the API server with fieldValidation=Strict: case-sensitive field names,
// unknown and duplicate fields reported, types checked by the Go types (including quantities and
// int-or-string values).
func strictKubernetes(raw []byte, into any) []string {
	strictErrors, err := kjson.UnmarshalStrict(raw, into, kjson.DisallowUnknownFields)
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, strict := range strictErrors {
		problems = append(problems, strict.Error())
	}
	return problems
}

// strictProto decodes a spec as istiod reads Istio's protobuf-defined config: protojson, unknown fields
// refused.
func strictProto(raw []byte, into proto.Message) []string {
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw, into); err != nil {
		return []string{err.Error()}
	}
	return nil
}

// istioObject checks the envelope (apiVersion, kind, metadata) strictly and hands the spec to decodeSpec.
func istioObject(raw []byte, allowedTopLevel []string, decodeSpec func(spec json.RawMessage) []string) []string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	allowed := map[string]bool{"apiVersion": true, "kind": true, "metadata": true}
	for _, name := range allowedTopLevel {
		allowed[name] = true
	}
	for name := range fields {
		if !allowed[name] {
			problems = append(problems, fmt.Sprintf("unknown field %q", name))
		}
	}
	if metadata, ok := fields["metadata"]; ok {
		problems = append(problems, strictKubernetes(metadata, &metav1.ObjectMeta{})...)
	}
	spec, ok := fields["spec"]
	if !ok {
		return append(problems, `missing field "spec"`)
	}
	return append(problems, decodeSpec(spec)...)
}

func check(item input) verdict {
	var meta typeMeta
	if err := json.Unmarshal(item.Object, &meta); err != nil {
		return verdict{ID: item.ID, Status: "invalid", Errors: []string{err.Error()}}
	}
	key := meta.APIVersion + "/" + meta.Kind
	var problems []string
	switch {
	case kubernetesTypes[key] != nil:
		problems = strictKubernetes(item.Object, kubernetesTypes[key]())
	case key == "security.istio.io/v1/AuthorizationPolicy":
		// security.istio.io/v1 is an alias of v1beta1's message (istio.io/api security/v1).
		problems = istioObject(item.Object, []string{"spec"}, func(spec json.RawMessage) []string {
			return strictProto(spec, &securityv1beta1.AuthorizationPolicy{})
		})
	case key == "install.istio.io/v1alpha1/IstioOperator":
		// Only spec.meshConfig is checked (as MeshConfig); the snippet has nothing else in spec.
		problems = istioObject(item.Object, []string{"spec"}, func(spec json.RawMessage) []string {
			var specFields map[string]json.RawMessage
			if err := json.Unmarshal(spec, &specFields); err != nil {
				return []string{err.Error()}
			}
			var found []string
			for name := range specFields {
				if name != "meshConfig" {
					found = append(found, fmt.Sprintf("spec.%s: not checked by manifest-check; only meshConfig is", name))
				}
			}
			mesh, ok := specFields["meshConfig"]
			if !ok {
				return append(found, `missing field "spec.meshConfig"`)
			}
			return append(found, strictProto(mesh, &meshv1alpha1.MeshConfig{})...)
		})
	default:
		return verdict{ID: item.ID, Kind: key, Status: "unknown_kind", Errors: []string{}}
	}
	if len(problems) > 0 {
		return verdict{ID: item.ID, Kind: key, Status: "invalid", Errors: problems}
	}
	return verdict{ID: item.ID, Kind: key, Status: "ok", Errors: []string{}}
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifest-check: cannot read stdin:", err)
		os.Exit(2)
	}
	var items []input
	if err := json.Unmarshal(data, &items); err != nil {
		fmt.Fprintln(os.Stderr, "manifest-check: stdin is not a JSON array of {id, object}:", err)
		os.Exit(2)
	}
	verdicts := make([]verdict, 0, len(items))
	for _, item := range items {
		verdicts = append(verdicts, check(item))
	}
	if err := json.NewEncoder(os.Stdout).Encode(verdicts); err != nil {
		fmt.Fprintln(os.Stderr, "manifest-check: cannot write stdout:", err)
		os.Exit(2)
	}
}
