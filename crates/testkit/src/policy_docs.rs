//! Policy manifests for the 3×3 policy world, written as YAML documents: the policy crate's
//! semantics tests feed them to `evaluate`, the lab's tests to `twill lab apply -f`. `spec` is
//! YAML indented by nothing; each document starts with `---`, so they concatenate.

/// The subject "every pod of namespace x" of an (Baseline)AdminNetworkPolicy.
pub const SUBJECT_X: &str = "subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}";

/// The peer list "every pod of namespace `ns`" of an admin policy rule.
pub fn from_ns(ns: &str) -> String {
    format!("[{{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}}}]")
}

/// A NetworkPolicy document in namespace `ns`.
pub fn np(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{}",
        indented(spec)
    )
}

/// An AdminNetworkPolicy document of `priority`.
pub fn anp(name: &str, priority: u32, spec: &str) -> String {
    format!(
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata:\n  name: {name}\nspec:\n  priority: {priority}\n{}",
        indented(spec)
    )
}

/// The BaselineAdminNetworkPolicy document (its name is always `default`).
pub fn banp(spec: &str) -> String {
    format!(
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata:\n  name: default\nspec:\n{}",
        indented(spec)
    )
}

/// `spec`'s lines indented under `spec:`, each ending in a newline.
fn indented(spec: &str) -> String {
    spec.lines().map(|l| format!("  {l}\n")).collect()
}
