#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The deployment files agree with the server and with each other: the Kubernetes manifests
//! parse, probe the server's health routes on its port, name the image the Dockerfile and the CI
//! workflow build, bound the resources, and run several replicas only in stateless mode; the
//! image runs the server alone, as a non-root user; and the server crate links nothing else of
//! this workspace.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifest(name: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(&format!("deploy/k8s/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn text<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str().unwrap_or_else(|| panic!("{what}: {yaml:?}"))
}

/// The image name the manifests, the Dockerfile's instructions and the workflow share.
const IMAGE: &str = "mcp-oauth-server";

#[test]
fn the_kubernetes_manifests_probe_health_and_scale_only_when_stateless() {
    let kustomization = manifest("kustomization.yaml");
    let listed: Vec<&str> = kustomization["resources"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| text(r, "resource"))
        .collect();
    for name in &listed {
        let parsed = manifest(name);
        assert!(parsed["kind"].as_str().is_some(), "{name} has a kind");
    }
    manifest("secret.example.yaml");

    let deployment = manifest("deployment.yaml");
    assert_eq!(text(&deployment["kind"], "kind"), "Deployment");
    let name = text(&deployment["metadata"]["name"], "name");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let server = &containers[0];
    let image = text(&server["image"], "image");
    assert!(image.starts_with(&format!("{IMAGE}:")), "{image}");
    let ports: Vec<(&str, i64)> = server["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| {
            (
                text(&p["name"], "port name"),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(ports.contains(&("mcp", 8000)), "{ports:?}");
    assert!(ports.contains(&("metrics", 9100)), "{ports:?}");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &server[probe]["httpGet"];
        assert_eq!(text(&get["path"], probe), path, "{probe}");
        assert_eq!(text(&get["port"], probe), "mcp", "{probe} on the MCP port");
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !server["resources"][kind][resource].is_badvalue(),
                "resources.{kind}.{resource}"
            );
        }
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        server["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );

    let config = manifest("configmap.yaml");
    let config_name = text(&config["metadata"]["name"], "configmap name");
    let sources = server["envFrom"].as_vec().unwrap();
    assert!(
        sources
            .iter()
            .any(|s| s["configMapRef"]["name"].as_str() == Some(config_name)),
        "the Deployment reads the ConfigMap"
    );
    for required in ["OAUTH_ISSUER", "MCP_RESOURCE_URL"] {
        assert!(config["data"][required].as_str().is_some(), "{required}");
    }
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap();
    let hpa = manifest("hpa.yaml");
    assert_eq!(
        text(&hpa["spec"]["scaleTargetRef"]["name"], "hpa target"),
        name
    );
    assert_eq!(
        text(&hpa["spec"]["scaleTargetRef"]["kind"], "hpa kind"),
        "Deployment"
    );
    let most = hpa["spec"]["maxReplicas"].as_i64().unwrap().max(replicas);
    if most > 1 {
        assert_eq!(
            config["data"]["MCP_STATELESS"].as_str(),
            Some("true"),
            "more than one replica needs stateless mode (sessions live in one pod)"
        );
    }

    let service = manifest("service.yaml");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_hash().unwrap() {
        assert_eq!(
            &labels[text(key, "selector key")],
            value,
            "the Service selects the pods"
        );
    }
    for port in service["spec"]["ports"].as_vec().unwrap() {
        let target = text(&port["targetPort"], "targetPort");
        assert!(ports.iter().any(|(n, _)| *n == target), "{target}");
    }
}

/// The server image: the server binary only (no mock IdP), a non-root user, listening on the port
/// the manifests probe, with the resource URL left for the operator to set; the CI workflow builds
/// both image targets under the shared name.
#[test]
fn the_image_runs_the_server_alone_as_non_root() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    let server = stages.last().expect("stages");
    assert!(
        server.contains(" AS server"),
        "the server stage is last, so it is the default target"
    );
    assert!(server.contains("\nUSER nonroot"), "non-root");
    assert!(server.contains("ENV HOST=0.0.0.0 PORT=8000"));
    assert!(
        !server.contains("mock-idp"),
        "no mock IdP in the server image"
    );
    assert!(
        !server.contains("MCP_RESOURCE_URL"),
        "the operator sets the resource URL"
    );
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    let workflow = read(".github/workflows/ci.yml");
    assert!(
        workflow.contains(&format!("docker build -t {IMAGE}:")),
        "CI builds the server image"
    );
    assert!(workflow.contains("--target mock-idp"), "and the mock IdP's");
}

/// The release server links nothing else of this workspace: the mock IdP, with its token-minting
/// admin API, lives only in tests and the demo example (`cargo tree`, as the architecture issue
/// states it).
#[test]
fn the_server_depends_on_nothing_else_in_the_workspace() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .current_dir(repo())
        .args(["tree", "-p", "mcp-oauth-server", "-e", "normal"])
        .args(["--prefix", "none", "--offline", "--locked"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    assert!(tree.starts_with("mcp-oauth-server "), "{tree}");
    assert!(
        tree.lines().any(|line| line.starts_with("rmcp ")),
        "the tree lists the dependencies: {tree}"
    );
    for crate_of_ours in ["mock-idp ", "conformance "] {
        assert!(
            !tree.lines().any(|line| line.starts_with(crate_of_ours)),
            "the server depends on {crate_of_ours}: {tree}"
        );
    }
}
