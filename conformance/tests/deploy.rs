#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The deployment files agree with the server and with each other: the Kubernetes manifests
//! parse, are all listed by the kustomization, probe the server's health routes on its port, name
//! the image the Dockerfile and the CI workflow build, bound the resources, and run several
//! replicas only in stateless mode; the pods run as the image's numeric user with no
//! service-account token; metrics have a Service of their own and a NetworkPolicy admits them
//! only from the monitoring namespace; the image runs the server alone, as a numeric non-root
//! user, on base images pinned by digest; and the server crate links nothing else of this
//! workspace.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifest(name: &str) -> Yaml {
    manifest_in("deploy/k8s", name)
}

/// The one YAML document of `dir/name`.
fn manifest_in(dir: &str, name: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(&format!("{dir}/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn text<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str().unwrap_or_else(|| panic!("{what}: {yaml:?}"))
}

/// The files a kustomization lists.
fn resources(kustomization: &Yaml) -> Vec<&str> {
    kustomization["resources"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| text(r, "resource"))
        .collect()
}

/// The image name the manifests, the Dockerfile's instructions and the workflow share.
const IMAGE: &str = "mcp-oauth-server";

#[test]
fn the_kubernetes_manifests_probe_health_and_scale_only_when_stateless() {
    let kustomization = manifest("kustomization.yaml");
    let listed = resources(&kustomization);
    for name in &listed {
        let parsed = manifest(name);
        assert!(parsed["kind"].as_str().is_some(), "{name} has a kind");
    }
    manifest("secret.example.yaml");
    // `kubectl apply -k` applies what the kustomization lists, nothing else: a manifest left out
    // is silently not deployed. The Secret is an example, created out of band.
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("deploy/k8s"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml"))
        .filter(|name| name != "kustomization.yaml" && name != "secret.example.yaml")
        .collect();
    on_disk.sort();
    let mut sorted: Vec<&str> = listed.clone();
    sorted.sort_unstable();
    assert_eq!(on_disk, sorted, "the kustomization lists every manifest");

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
}

/// The server's container in the Deployment.
fn server_container(deployment: &Yaml) -> &Yaml {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .unwrap();
    &containers[0]
}

/// The named container ports of the Deployment: (name, number).
fn container_ports(deployment: &Yaml) -> Vec<(&str, i64)> {
    server_container(deployment)["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| {
            (
                text(&p["name"], "port name"),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `selector` (a Service's selector, a `matchLabels`) picks the Deployment's pods.
fn selects_the_pods(selector: &Yaml, deployment: &Yaml, what: &str) {
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selector = selector
        .as_hash()
        .unwrap_or_else(|| panic!("{what}: a selector"));
    assert!(!selector.is_empty(), "{what}: an empty selector");
    for (key, value) in selector {
        assert_eq!(
            &labels[text(key, "selector key")],
            value,
            "{what} selects the pods"
        );
    }
}

/// The container port names a Service's ports lead to, each checked to exist.
fn service_target_ports<'a>(service: &'a Yaml, deployment: &Yaml, what: &str) -> Vec<&'a str> {
    let ports = container_ports(deployment);
    service["spec"]["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|port| {
            let target = text(&port["targetPort"], "targetPort");
            assert!(
                ports.iter().any(|(n, _)| *n == target),
                "{what}: {target} is no container port"
            );
            target
        })
        .collect()
}

/// The MCP Service carries the MCP port only: a Service exposed through an ingress or a load
/// balancer must not expose `/metrics`. The metrics port has its own cluster-internal Service.
#[test]
fn the_metrics_port_has_a_service_of_its_own() {
    let deployment = manifest("deployment.yaml");
    let service = manifest("service.yaml");
    selects_the_pods(&service["spec"]["selector"], &deployment, "the MCP Service");
    assert_eq!(
        service_target_ports(&service, &deployment, "the MCP Service"),
        ["mcp"],
        "the MCP Service exposes the MCP port alone"
    );

    let metrics = manifest("service-metrics.yaml");
    assert_eq!(text(&metrics["kind"], "kind"), "Service");
    assert_ne!(
        metrics["metadata"]["name"], service["metadata"]["name"],
        "two Services"
    );
    assert!(
        matches!(metrics["spec"]["type"].as_str(), None | Some("ClusterIP")),
        "metrics stay inside the cluster"
    );
    selects_the_pods(
        &metrics["spec"]["selector"],
        &deployment,
        "the metrics Service",
    );
    assert_eq!(
        service_target_ports(&metrics, &deployment, "the metrics Service"),
        ["metrics"]
    );
    let config = manifest("configmap.yaml");
    let metrics_addr = text(&config["data"]["MCP_METRICS_ADDR"], "MCP_METRICS_ADDR");
    let metrics_port = container_ports(&deployment)
        .into_iter()
        .find(|(name, _)| *name == "metrics")
        .unwrap()
        .1;
    assert!(
        metrics_addr.ends_with(&format!(":{metrics_port}")),
        "the server serves metrics on the port named metrics: {metrics_addr}"
    );
}

/// The pods run as the images' user, given as numbers (a kubelet cannot verify `runAsNonRoot`
/// against a user name and refuses to start the container), with no service-account token: the
/// server calls no Kubernetes API.
#[test]
fn the_pods_run_as_the_images_numeric_user_without_a_service_account_token() {
    let (uid, gid) = image_user(&stage(&read("Dockerfile"), "server"));
    let deployment = manifest("deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        security["runAsUser"].as_i64(),
        Some(i64::from(uid)),
        "runAsUser: the image's uid"
    );
    assert_eq!(
        security["runAsGroup"].as_i64(),
        Some(i64::from(gid)),
        "runAsGroup: the image's gid"
    );
    assert_eq!(
        security["fsGroup"].as_i64(),
        Some(i64::from(gid)),
        "fsGroup"
    );
    let container = &server_container(&deployment)["securityContext"];
    for field in ["runAsUser", "runAsGroup"] {
        assert!(
            container[field].is_badvalue(),
            "the container does not override the pod's {field}"
        );
    }
    assert_eq!(
        pod["automountServiceAccountToken"].as_bool(),
        Some(false),
        "no service-account token in the pod"
    );
}

/// The NetworkPolicy example: the MCP port from anywhere, the metrics port only from the
/// monitoring namespace (by label), and out only DNS and HTTPS (the identity provider).
#[test]
fn the_network_policy_admits_metrics_only_from_the_monitoring_namespace() {
    let deployment = manifest("deployment.yaml");
    let named = container_ports(&deployment);
    let policy = manifest("networkpolicy.yaml");
    assert_eq!(text(&policy["kind"], "kind"), "NetworkPolicy");
    selects_the_pods(
        &policy["spec"]["podSelector"]["matchLabels"],
        &deployment,
        "the NetworkPolicy",
    );
    let types: Vec<&str> = policy["spec"]["policyTypes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|t| text(t, "policy type"))
        .collect();
    assert_eq!(types, ["Ingress", "Egress"]);
    let ingress = policy["spec"]["ingress"].as_vec().unwrap();
    let mut mcp_admitted = false;
    let mut metrics_admitted = false;
    for rule in ingress {
        // The pod's ports by name (a number is looked up).
        let ports: Vec<(String, String)> = rule_ports(rule, "ingress")
            .into_iter()
            .map(|(port, protocol)| {
                let name = named
                    .iter()
                    .find(|(_, number)| number.to_string() == port)
                    .map_or(port, |(name, _)| (*name).to_owned());
                (name, protocol)
            })
            .collect();
        for (port, _) in &ports {
            assert!(
                named.iter().any(|(name, _)| name == port),
                "ingress to {port}, which the pod does not have"
            );
        }
        mcp_admitted |= ports.iter().any(|(port, _)| port == "mcp");
        if ports.iter().any(|(port, _)| port == "metrics") {
            metrics_admitted = true;
            let from = rule["from"]
                .as_vec()
                .expect("metrics only from named peers, never from anywhere");
            assert!(!from.is_empty(), "an empty `from` admits everyone");
            for peer in from {
                let labels = peer["namespaceSelector"]["matchLabels"]
                    .as_hash()
                    .expect("metrics peers are chosen by namespace label");
                assert!(
                    labels
                        .values()
                        .any(|value| value.as_str().is_some_and(|v| v.contains("monitoring"))),
                    "the monitoring namespace: {labels:?}"
                );
                assert!(peer["ipBlock"].is_badvalue(), "no address ranges");
            }
        }
    }
    assert!(mcp_admitted, "the MCP port is reachable");
    assert!(
        metrics_admitted,
        "the metrics port is reachable from monitoring"
    );

    let egress: Vec<(String, String)> = policy["spec"]["egress"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|rule| rule_ports(rule, "egress"))
        .collect();
    let mut wanted = vec![
        ("53".to_owned(), "UDP".to_owned()),
        ("53".to_owned(), "TCP".to_owned()),
        ("443".to_owned(), "TCP".to_owned()),
    ];
    let mut egress_sorted = egress.clone();
    egress_sorted.sort();
    wanted.sort();
    assert_eq!(egress_sorted, wanted, "out: DNS and HTTPS only");
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
    // Both images: a numeric, non-root uid and gid (image_user checks them).
    assert_eq!(image_user(server), (65532, 65532), "distroless's nonroot");
    assert_eq!(
        image_user(&stage(&dockerfile, "mock-idp")),
        (65532, 65532),
        "the mock IdP's image too"
    );
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

/// Every base image is pinned by digest (`FROM name:tag@sha256:<64 hex>`): a tag can be moved
/// to other bytes, a digest cannot.
#[test]
fn every_base_image_is_pinned_by_digest() {
    let dockerfile = read("Dockerfile");
    let mut stage_names: Vec<String> = Vec::new();
    let mut bases = 0;
    for line in dockerfile.lines() {
        let Some(rest) = line.trim().strip_prefix("FROM ") else {
            continue;
        };
        let mut words = rest.split_whitespace().filter(|w| !w.starts_with("--"));
        let image = words.next().expect("FROM names an image");
        if let (Some(as_), Some(name)) = (words.next(), words.next()) {
            assert!(as_.eq_ignore_ascii_case("AS"), "{line}");
            stage_names.push(name.to_owned());
        }
        if stage_names.iter().any(|name| name == image) {
            continue;
        }
        bases += 1;
        let (name, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("not pinned by digest: {line}"));
        assert!(name.contains(':'), "the tag stays for the reader: {line}");
        assert!(
            digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "a sha256 digest is 64 lowercase hex digits: {line}"
        );
    }
    assert!(bases >= 2, "the build and runtime bases were found");
}

/// A NetworkPolicy rule's ports as (port name or number, protocol); every rule must name its
/// ports, since a rule without them admits every port.
fn rule_ports(rule: &Yaml, what: &str) -> Vec<(String, String)> {
    let ports = rule["ports"]
        .as_vec()
        .unwrap_or_else(|| panic!("{what}: every rule names its ports"));
    ports
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP").to_owned();
            let port = match &p["port"] {
                Yaml::String(name) => name.clone(),
                Yaml::Integer(number) => number.to_string(),
                other => panic!("{what}: port {other:?}"),
            };
            (port, protocol)
        })
        .collect()
}

/// The Dockerfile stage named `name` (`FROM ... AS name`), up to the next `FROM`.
fn stage(dockerfile: &str, name: &str) -> String {
    dockerfile
        .split("\nFROM ")
        .skip(1)
        .find(|stage| {
            stage
                .lines()
                .next()
                .is_some_and(|first| first.ends_with(&format!(" AS {name}")))
        })
        .unwrap_or_else(|| panic!("no stage {name}"))
        .to_owned()
}

/// The user a stage's image runs as, from its last `USER` line, which must be `uid:gid` in
/// numbers, neither of them root.
fn image_user(stage: &str) -> (u32, u32) {
    let user = stage
        .lines()
        .filter_map(|line| line.trim().strip_prefix("USER "))
        .next_back()
        .unwrap_or_else(|| panic!("no USER in {stage}"))
        .trim();
    let parsed = user
        .split_once(':')
        .and_then(|(uid, gid)| Some((uid.parse::<u32>().ok()?, gid.parse::<u32>().ok()?)));
    let (uid, gid) = parsed.unwrap_or_else(|| {
        panic!("USER {user}: a numeric uid:gid (a kubelet cannot check a name for runAsNonRoot)")
    });
    assert!(uid != 0 && gid != 0, "USER {user}: not root");
    (uid, gid)
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

fn gateway_manifest(name: &str) -> Yaml {
    manifest_in("deploy/k8s-gateway", name)
}

/// The gateway sidecar example: the gateway forwards to loopback, the upstream listens on loopback
/// and declares no port, and the Service reaches the gateway's port alone; so the upstream (which
/// trusts the gateway's identity headers) is reachable only through the gateway.
#[test]
fn the_gateway_sidecar_keeps_the_upstream_on_loopback() {
    let kustomization = gateway_manifest("kustomization.yaml");
    let listed = resources(&kustomization);
    assert_eq!(listed, ["deployment.yaml", "service.yaml"]);
    let deployment = gateway_manifest("deployment.yaml");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .unwrap();
    let gateway = &containers[0];
    assert!(text(&gateway["image"], "image").starts_with(IMAGE));
    let env = |container: &Yaml, name: &str| -> String {
        container["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| text(&e["name"], "env name") == name)
            .map(|e| text(&e["value"], name).to_owned())
            .unwrap_or_else(|| panic!("{name} is not set"))
    };
    let upstream_url = env(gateway, "MCP_UPSTREAM_URL");
    assert!(
        upstream_url.starts_with("http://127.0.0.1:"),
        "{upstream_url}"
    );
    assert_eq!(
        text(&gateway["readinessProbe"]["httpGet"]["path"], "probe"),
        "/readyz"
    );
    let upstream = &containers[1];
    assert!(
        upstream["ports"].is_badvalue(),
        "the upstream declares no port"
    );
    assert_eq!(env(upstream, "HOST"), "127.0.0.1");
    let port = upstream_url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap();
    assert_eq!(env(upstream, "PORT"), port, "the gateway forwards to it");
    let service = gateway_manifest("service.yaml");
    let targets = service_target_ports(&service, &deployment, "the gateway Service");
    assert_eq!(targets, ["mcp"]);
    let gateway_ports: Vec<&str> = container_ports(&deployment)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(gateway_ports, ["mcp"]);
    selects_the_pods(
        &service["spec"]["selector"],
        &deployment,
        "the gateway Service",
    );
}

/// Issue 21's deployment: `deploy/k8s/shared-state` is the base plus a Valkey. The overlay lists
/// every manifest it has; the server's patch points `MCP_STATE_URL` at the Valkey Service by name
/// and port and reads the password from the file the Secret is mounted as (the same Secret
/// Valkey's `--requirepass` reads); Valkey runs unprivileged on a read-only root, and only the
/// server's pods may reach it, on its port, which the server's added egress rule allows.
#[test]
fn the_shared_state_overlay_wires_the_replicas_to_one_valkey() {
    let dir = "deploy/k8s/shared-state";
    let kustomization = manifest_in(dir, "kustomization.yaml");
    let mut listed: Vec<&str> = resources(&kustomization);
    assert_eq!(listed.first(), Some(&"../"), "the base first");
    listed.remove(0);
    let patch_name = text(&kustomization["patches"][0]["path"], "patch");
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| {
            name.ends_with(".yaml")
                && !["kustomization.yaml", "secret.example.yaml", patch_name]
                    .contains(&name.as_str())
        })
        .collect();
    on_disk.sort();
    listed.sort_unstable();
    assert_eq!(on_disk, listed, "the overlay lists every manifest");

    let service = manifest_in(dir, "valkey-service.yaml");
    let service_name = text(&service["metadata"]["name"], "service name");
    let port = service["spec"]["ports"][0]["port"].as_i64().unwrap();
    let patch = manifest_in(dir, patch_name);
    let container = &patch["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        text(&container["name"], "container"),
        "server",
        "patches the base's container"
    );
    let env = |name: &str| {
        container["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| text(&e["name"], "env name") == name)
            .map(|e| text(&e["value"], name).to_owned())
            .unwrap_or_else(|| panic!("{name} not set"))
    };
    assert_eq!(
        env("MCP_STATE_URL"),
        format!("redis://{service_name}:{port}/0")
    );
    let password_file = env("MCP_STATE_PASSWORD_FILE");
    let mount = text(&container["volumeMounts"][0]["mountPath"], "mount");
    let volume = &patch["spec"]["template"]["spec"]["volumes"][0];
    let secret = text(&volume["secret"]["secretName"], "secret");
    let key_path = text(&volume["secret"]["items"][0]["path"], "path");
    assert_eq!(password_file, format!("{mount}/{key_path}"));
    let example = manifest_in(dir, "secret.example.yaml");
    assert_eq!(text(&example["metadata"]["name"], "secret name"), secret);
    for setting in [
        "MCP_STATE_RATE_LIMIT_ON_FAILURE",
        "MCP_STATE_DPOP_REPLAY_ON_FAILURE",
    ] {
        assert!(read("docs/configuration.md").contains(&format!("`{setting}`")));
        assert!(["local", "refuse"].contains(&env(setting).as_str()));
    }

    let valkey = manifest_in(dir, "valkey.yaml");
    let pod = &valkey["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let valkey_container = &pod["containers"][0];
    assert_eq!(
        valkey_container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        text(
            &valkey_container["env"][0]["valueFrom"]["secretKeyRef"]["name"],
            "secret"
        ),
        secret
    );
    let args: Vec<&str> = valkey_container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| text(a, "arg"))
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--requirepass", "$(VALKEY_PASSWORD)"])
    );
    // Full is a failure the server meets with its fallbacks, never a silent eviction of a proof
    // still in its window or of a budget.
    assert!(
        args.windows(2)
            .any(|w| w == ["--maxmemory-policy", "noeviction"])
    );

    let server_label = "mcp-oauth-server";
    let ingress = manifest_in(dir, "valkey-networkpolicy.yaml");
    let rule = &ingress["spec"]["ingress"][0];
    assert_eq!(
        text(
            &rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            "from"
        ),
        server_label
    );
    assert_eq!(rule["ports"][0]["port"].as_i64(), Some(port));
    let egress = manifest_in(dir, "server-egress-networkpolicy.yaml");
    assert_eq!(
        text(
            &egress["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            "pods"
        ),
        server_label
    );
    assert_eq!(
        egress["spec"]["egress"][0]["ports"][0]["port"].as_i64(),
        Some(port)
    );
}
