//! The container image and the Kubernetes manifests (`Dockerfile`, `deploy/kubernetes/`): parsed and checked
//! for what a safe deployment depends on. Nothing is built or applied here (one test runs `serve` on the
//! manifests' tenants files, up to its ops listener); a manifest that drifts from the host's interface (flags,
//! env names, tenants.toml) or loses a safety setting fails these tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

use crate::support::HOST;

const GO_CONNECTOR_CREDENTIALS: [&str; 3] =
    ["BATON_AZURE_CLIENT_ID", "BATON_AZURE_CLIENT_SECRET", "BATON_AZURE_TENANT_ID"];
/// The Go connector's switches and the tenants.toml keys `serve` reads them from.
const GO_CONNECTOR_SWITCHES: [(&str, &str); 3] = [
    ("BATON_PROVISIONING", "provisioning"),
    ("BATON_MAILBOXSETTINGS", "mailbox_settings"),
    ("BATON_SKIP_AD_GROUPS", "skip_ad_groups"),
];
const FORMS: [&str; 2] = ["single-tenant", "multi-tenant"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ lives in the repository root").to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn yaml_files(form: &str) -> Vec<PathBuf> {
    let dir = repo_root().join("deploy/kubernetes").join(form);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml" || extension == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

/// Every Kubernetes object of one deployment form, from every document of every file (kustomization files
/// are not objects and are left out).
fn objects(form: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    for file in yaml_files(form) {
        for document in serde_yaml::Deserializer::from_str(&read(&file)) {
            let object = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", file.display()));
            if object.is_null() || kind(&object) == "Kustomization" {
                continue;
            }
            assert!(object["apiVersion"].is_string(), "an object in {} has no apiVersion", file.display());
            assert!(object["metadata"]["name"].is_string(), "an object in {} has no name", file.display());
            objects.push(object);
        }
    }
    objects
}

fn all_objects() -> Vec<Value> {
    FORMS.iter().flat_map(|form| objects(form)).collect()
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(objects: &'a [Value], wanted: &str) -> Vec<&'a Value> {
    objects.iter().filter(|object| kind(object) == wanted).collect()
}

fn one_of_kind<'a>(objects: &'a [Value], wanted: &str) -> &'a Value {
    match of_kind(objects, wanted).as_slice() {
        [only] => only,
        found => panic!("expected one {wanted}, found {}", found.len()),
    }
}

fn named<'a>(objects: &'a [Value], wanted_kind: &str, wanted_name: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| kind(object) == wanted_kind && name(object) == wanted_name)
        .unwrap_or_else(|| panic!("no {wanted_kind} named {wanted_name}"))
}

/// The pod spec of a workload, wherever its kind keeps it.
fn pod_spec(workload: &Value) -> Option<&Value> {
    let spec = match kind(workload) {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &workload["spec"]["template"]["spec"],
        "CronJob" => &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    assert!(spec.is_mapping(), "{} {} has no pod spec", kind(workload), name(workload));
    Some(spec)
}

fn workloads(objects: &[Value]) -> Vec<(&Value, &Value)> {
    objects.iter().filter_map(|object| pod_spec(object).map(|spec| (object, spec))).collect()
}

/// Long-running workloads: the ones that serve the ops port and need probes (a CronJob's `sync` has no
/// listener and exits when done).
fn serving_workloads(objects: &[Value]) -> Vec<(&Value, &Value)> {
    workloads(objects)
        .into_iter()
        .filter(|(workload, _)| matches!(kind(workload), "Deployment" | "StatefulSet"))
        .collect()
}

fn containers(pod_spec: &Value) -> Vec<&Value> {
    let listed =
        |key: &str| pod_spec[key].as_sequence().map(|items| items.iter().collect::<Vec<_>>()).unwrap_or_default();
    let mut containers = listed("containers");
    containers.extend(listed("initContainers"));
    assert!(!containers.is_empty(), "a pod spec without containers");
    containers
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_sequence().map(|items| items.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The value following `flag` in a container's args.
fn flag_value<'a>(container: &'a Value, flag: &str) -> Option<&'a str> {
    let args = strings(&container["args"]);
    args.iter().position(|arg| *arg == flag).and_then(|at| args.get(at + 1).copied())
}

fn env_names(container: &Value) -> BTreeSet<&str> {
    container["env"].as_sequence().into_iter().flatten().filter_map(|entry| entry["name"].as_str()).collect()
}

fn env_value<'a>(container: &'a Value, wanted: &str) -> Option<&'a str> {
    container["env"].as_sequence()?.iter().find(|entry| entry["name"] == wanted)?["value"].as_str()
}

/// A Secret's keys and values, from `stringData` and `data` alike.
fn secret_entries(secret: &Value) -> BTreeMap<&str, &str> {
    ["stringData", "data"]
        .iter()
        .filter_map(|field| secret[*field].as_mapping())
        .flatten()
        .filter_map(|(key, value)| Some((key.as_str()?, value.as_str()?)))
        .collect()
}

/// The text of tenants.toml, from the ConfigMap the workload mounts at --config.
fn tenants_toml_text<'a>(objects: &'a [Value], workload: &Value, container: &Value) -> &'a str {
    let config = flag_value(container, "--config").expect("serve is given --config");
    let config = Path::new(config);
    let mount_dir = config.parent().and_then(Path::to_str).expect("--config is a file in a directory");
    let file = config.file_name().and_then(|file| file.to_str()).expect("--config names a file");
    let mount = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|mount| mount["mountPath"] == mount_dir)
        .unwrap_or_else(|| panic!("{}: nothing is mounted at {mount_dir}", name(workload)));
    let volume = pod_spec(workload).expect("a workload")["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|volume| volume["name"] == mount["name"])
        .expect("the config mount's volume");
    let config_map = volume["configMap"]["name"].as_str().expect("the config volume is a ConfigMap");
    named(objects, "ConfigMap", config_map)["data"][file]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {config_map} has no {file}"))
}

fn tenants_toml(objects: &[Value], workload: &Value, container: &Value) -> toml::Table {
    toml::from_str(tenants_toml_text(objects, workload, container))
        .unwrap_or_else(|error| panic!("{}: its tenants.toml does not parse: {error}", name(workload)))
}

fn tenants(config: &toml::Table) -> Vec<&toml::Table> {
    let tenants: Vec<&toml::Table> = config
        .get("tenant")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
        .collect();
    assert!(!tenants.is_empty(), "tenants.toml has no [[tenant]]");
    tenants
}

fn credential<'a>(tenant: &'a toml::Table, key: &str) -> Option<&'a str> {
    tenant.get("credentials")?.as_table()?.get(key)?.as_str()
}

/// The port number a probe or `--ops-listen` refers to, resolving a named container port.
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(number) = port.as_u64() {
        return number;
    }
    let port_name = port.as_str().expect("a port is a number or a name");
    container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|declared| declared["name"] == port_name)
        .and_then(|declared| declared["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {port_name}"))
}

#[test]
fn every_container_runs_as_non_root_on_a_read_only_root_filesystem() {
    let objects = all_objects();
    assert!(!workloads(&objects).is_empty(), "no workloads in deploy/kubernetes");
    for (workload, pod) in workloads(&objects) {
        for container in containers(pod) {
            let context = &container["securityContext"];
            let what = format!(
                "{} {} container {}",
                kind(workload),
                name(workload),
                container["name"].as_str().unwrap_or("?")
            );
            assert_eq!(context["readOnlyRootFilesystem"], true, "{what}: readOnlyRootFilesystem");
            assert!(
                context["runAsNonRoot"] == true || pod["securityContext"]["runAsNonRoot"] == true,
                "{what}: runAsNonRoot"
            );
            assert_ne!(pod["securityContext"]["runAsUser"], 0, "{what}: runs as uid 0");
            assert_ne!(context["runAsUser"], 0, "{what}: runs as uid 0");
            assert_eq!(context["allowPrivilegeEscalation"], false, "{what}: allowPrivilegeEscalation");
            assert!(strings(&context["capabilities"]["drop"]).contains(&"ALL"), "{what}: capabilities not dropped");
            assert!(
                context["seccompProfile"]["type"] == "RuntimeDefault"
                    || pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault",
                "{what}: seccomp profile"
            );
        }
    }
}

#[test]
fn the_data_directory_and_tmp_are_writable_volumes() {
    let objects = all_objects();
    for (workload, pod) in workloads(&objects) {
        for container in containers(pod) {
            let data_dir = flag_value(container, "--data-dir")
                .map(str::to_owned)
                .or_else(|| {
                    let output = env_value(container, "BATON_FILE")?;
                    Some(Path::new(output).parent()?.to_str()?.to_owned())
                })
                .unwrap_or_else(|| panic!("{}: neither --data-dir nor an absolute BATON_FILE", name(workload)));
            let writable: Vec<&str> = container["volumeMounts"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter(|mount| mount["readOnly"] != true)
                .filter_map(|mount| mount["mountPath"].as_str())
                .collect();
            assert!(writable.contains(&data_dir.as_str()), "{}: {data_dir} is not a writable volume", name(workload));
            assert!(writable.contains(&"/tmp"), "{}: /tmp is not a writable volume", name(workload));
        }
    }
}

#[test]
fn every_container_has_cpu_and_memory_requests_and_limits() {
    let objects = all_objects();
    for (workload, pod) in workloads(&objects) {
        for container in containers(pod) {
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        !container["resources"][bound][resource].is_null(),
                        "{} {}: no {resource} {bound}",
                        kind(workload),
                        name(workload)
                    );
                }
            }
        }
    }
}

#[test]
fn serving_containers_probe_healthz_for_liveness_and_readyz_for_readiness_on_the_ops_port() {
    let objects = all_objects();
    let serving = serving_workloads(&objects);
    assert_eq!(serving.len(), 2, "one Deployment (single tenant) and one StatefulSet (multi-tenant)");
    for (workload, pod) in serving {
        for container in containers(pod) {
            let ops_listen = flag_value(container, "--ops-listen").expect("serve is given --ops-listen");
            let ops_port: u64 =
                ops_listen.rsplit(':').next().and_then(|port| port.parse().ok()).expect("--ops-listen has a port");
            assert!(
                ops_listen.starts_with("0.0.0.0:"),
                "{}: the kubelet cannot reach a loopback ops listener",
                name(workload)
            );
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                let get = &container[probe]["httpGet"];
                assert_eq!(get["path"], path, "{} {probe}", name(workload));
                assert_eq!(container_port(container, &get["port"]), ops_port, "{} {probe} port", name(workload));
            }
            assert!(
                flag_value(container, "--ops-token-file").is_some(),
                "{}: the ops port has no token",
                name(workload)
            );
        }
    }
}

/// The Secret whose volume is mounted at the directory of `file` in `container`.
fn secret_mounted_for<'a>(pod: &'a Value, container: &Value, file: &str) -> &'a str {
    let directory = Path::new(file).parent().and_then(Path::to_str).expect("a file in a directory");
    let mount = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|mount| mount["mountPath"] == directory)
        .unwrap_or_else(|| panic!("nothing is mounted at {directory}"));
    pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|volume| volume["name"] == mount["name"])
        .and_then(|volume| volume["secret"]["secretName"].as_str())
        .unwrap_or_else(|| panic!("{directory} is not a Secret volume"))
}

/// Prometheus gets a token that can only read: the operator token, which can grant and revoke,
/// comes from another Secret.
#[test]
fn serving_containers_take_a_read_token_from_a_secret_of_its_own() {
    let objects = all_objects();
    for (workload, pod) in serving_workloads(&objects) {
        for container in containers(pod) {
            let operator = flag_value(container, "--ops-token-file").expect("an operator token");
            let reader = flag_value(container, "--ops-read-token-file")
                .unwrap_or_else(|| panic!("{}: no read token for Prometheus", name(workload)));
            let (operator, reader) =
                (secret_mounted_for(pod, container, operator), secret_mounted_for(pod, container, reader));
            assert_ne!(operator, reader, "{}: one Secret for both tokens", name(workload));
            named(&objects, "Secret", reader);
        }
    }
    let services = read(&repo_root().join("deploy/kubernetes/multi-tenant/services.yaml"));
    assert!(services.contains("azure-connector-ops-read-token"), "Prometheus is told to use the read token");
}

#[test]
fn single_tenant_secret_holds_exactly_the_go_connector_env_names() {
    let objects = objects("single-tenant");
    let mut consumers = 0;
    for (workload, pod) in workloads(&objects) {
        for container in containers(pod) {
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                let secret_name = source["secretRef"]["name"].as_str().expect("envFrom takes a Secret");
                assert!(
                    source["prefix"].is_null(),
                    "{}: a prefix would rename the Go connector's variables",
                    name(workload)
                );
                let keys: BTreeSet<&str> = secret_entries(named(&objects, "Secret", secret_name)).into_keys().collect();
                assert_eq!(keys, GO_CONNECTOR_CREDENTIALS.into_iter().collect(), "Secret {secret_name}");
                consumers += 1;
            }
        }
    }
    assert_eq!(consumers, 2, "the Deployment and the CronJob both take the credentials Secret through envFrom");
}

#[test]
fn single_tenant_workloads_set_the_go_connector_switches() {
    let objects = objects("single-tenant");
    for wanted in ["Deployment", "CronJob"] {
        let workload = one_of_kind(&objects, wanted);
        for container in containers(pod_spec(workload).expect("a workload")) {
            let names = env_names(container);
            for (variable, _) in GO_CONNECTOR_SWITCHES {
                assert!(names.contains(variable), "{wanted} does not set {variable}");
            }
        }
    }
}

#[test]
fn single_tenant_env_switches_agree_with_the_tenants_toml_that_serve_reads() {
    let objects = objects("single-tenant");
    let deployment = one_of_kind(&objects, "Deployment");
    let container = containers(pod_spec(deployment).expect("a workload"))[0];
    let config = tenants_toml(&objects, deployment, container);
    let tenants = tenants(&config);
    let [tenant] = tenants.as_slice() else { panic!("the single-tenant tenants.toml has one tenant") };
    for (variable, key) in GO_CONNECTOR_SWITCHES {
        let in_env: bool = env_value(container, variable)
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{variable} is set to true or false"));
        assert_eq!(tenant.get(key).and_then(toml::Value::as_bool), Some(in_env), "{key} in tenants.toml vs {variable}");
    }
    for (variable, key) in [
        ("BATON_AZURE_CLIENT_ID", "client_id_env"),
        ("BATON_AZURE_TENANT_ID", "tenant_id_env"),
        ("BATON_AZURE_CLIENT_SECRET", "client_secret_env"),
    ] {
        assert_eq!(credential(tenant, key), Some(variable), "tenants.toml reads {key} from the Go connector's name");
    }
}

#[test]
fn no_secret_value_appears_in_a_config_map() {
    for form in FORMS {
        let objects = objects(form);
        let secret_values: Vec<&str> =
            of_kind(&objects, "Secret").into_iter().flat_map(|secret| secret_entries(secret).into_values()).collect();
        assert!(!secret_values.is_empty(), "{form}: no Secret");
        for config_map in of_kind(&objects, "ConfigMap") {
            let text = serde_yaml::to_string(&config_map["data"]).expect("ConfigMap data serializes");
            for value in &secret_values {
                assert!(!text.contains(value), "ConfigMap {} contains the Secret value {value:?}", name(config_map));
            }
        }
    }
}

#[test]
fn tenants_toml_parses_and_never_holds_a_client_secret() {
    fn assert_no_client_secret(table: &toml::Table, place: &str) {
        for (key, value) in table {
            assert_ne!(key, "client_secret", "{place}: a client secret written into tenants.toml");
            match value {
                toml::Value::Table(inner) => assert_no_client_secret(inner, place),
                toml::Value::Array(items) => items
                    .iter()
                    .filter_map(toml::Value::as_table)
                    .for_each(|inner| assert_no_client_secret(inner, place)),
                _ => {}
            }
        }
    }
    for form in FORMS {
        let objects = objects(form);
        for (workload, pod) in serving_workloads(&objects) {
            let config = tenants_toml(&objects, workload, containers(pod)[0]);
            assert_no_client_secret(&config, form);
            for tenant in tenants(&config) {
                let id = tenant.get("id").and_then(toml::Value::as_str).expect("every tenant has an id");
                assert!(credential(tenant, "client_id_env").is_some(), "{form} {id}: client_id_env");
                assert!(credential(tenant, "tenant_id_env").is_some(), "{form} {id}: tenant_id_env");
                let secret_sources = ["client_secret_env", "client_secret_file"]
                    .iter()
                    .filter(|key| credential(tenant, key).is_some())
                    .count();
                assert_eq!(secret_sources, 1, "{form} {id}: one of client_secret_env, client_secret_file");
            }
        }
    }
}

/// `serve` reads the tenants file strictly (an unknown or misspelt key is an error), so each manifest's file is
/// given to the real binary. Its ops address is already taken: it loads the tenants, logs how many it serves,
/// and stops at the listener, before any sync (credentials are read only when a tenant syncs).
#[test]
fn serve_loads_the_tenants_toml_of_every_manifest() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let taken = taken.local_addr().expect("its address").to_string();
    for form in FORMS {
        let objects = objects(form);
        for (workload, pod) in serving_workloads(&objects) {
            let container = containers(pod)[0];
            let dir = tempfile::tempdir().expect("a temporary directory");
            let config = dir.path().join("tenants.toml");
            std::fs::write(&config, tenants_toml_text(&objects, workload, container)).expect("tenants.toml is written");
            let expected = tenants(&tenants_toml(&objects, workload, container)).len();
            let output = std::process::Command::new(HOST)
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(["--ops-listen", &taken, "--shard-index", "0", "--shard-count", "1"])
                .env_clear()
                .env("BATON_LOG_FORMAT", "json")
                .env("BATON_LOG_LEVEL", "info")
                .output()
                .expect("the host binary runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{form}: serve did not stop at the taken address:\n{stderr}");
            assert!(stderr.contains("--ops-listen"), "{form}: serve stopped before the ops listener:\n{stderr}");
            let serving = stderr
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|line| line["fields"]["message"] == "serving")
                .unwrap_or_else(|| panic!("{form}: serve did not load its tenants.toml:\n{stderr}"));
            assert_eq!(serving["fields"]["tenants"], expected, "{form}: every tenant of the file is served");
        }
    }
}

#[test]
fn multi_tenant_credentials_named_in_tenants_toml_are_provided_to_the_pods() {
    let objects = objects("multi-tenant");
    let statefulset = one_of_kind(&objects, "StatefulSet");
    let pod = pod_spec(statefulset).expect("a workload");
    let container = containers(pod)[0];
    let config = tenants_toml(&objects, statefulset, container);
    let env = env_names(container);
    let mounts: Vec<(&str, &str)> = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|mount| Some((mount["mountPath"].as_str()?, mount["name"].as_str()?)))
        .collect();
    for tenant in tenants(&config) {
        let id = tenant.get("id").and_then(toml::Value::as_str).expect("every tenant has an id");
        for key in ["client_id_env", "tenant_id_env"] {
            let variable = credential(tenant, key).expect("an env name");
            assert!(env.contains(variable), "{id}: the StatefulSet does not set {variable}");
        }
        let file = credential(tenant, "client_secret_file").expect("multi-tenant secrets are files");
        let (mount_path, volume_name) = mounts
            .iter()
            .find(|(path, _)| file.starts_with(&format!("{path}/")))
            .unwrap_or_else(|| panic!("{id}: nothing is mounted above {file}"));
        let relative = &file[mount_path.len() + 1..];
        let volume = pod["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|volume| volume["name"] == *volume_name)
            .expect("the mount's volume");
        let projected = volume["projected"]["sources"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find_map(|source| {
                let item = source["secret"]["items"].as_sequence()?.iter().find(|item| item["path"] == relative)?;
                Some((source["secret"]["name"].as_str()?, item["key"].as_str()?))
            })
            .unwrap_or_else(|| panic!("{id}: no Secret is projected at {file}"));
        let (secret_name, key) = projected;
        assert!(
            secret_entries(named(&objects, "Secret", secret_name)).contains_key(key),
            "{id}: Secret {secret_name} has no {key}"
        );
    }
}

#[test]
fn statefulset_shard_count_equals_its_replicas() {
    let objects = objects("multi-tenant");
    let statefulset = one_of_kind(&objects, "StatefulSet");
    let replicas = statefulset["spec"]["replicas"].as_u64().expect("replicas is set");
    for container in containers(pod_spec(statefulset).expect("a workload")) {
        let count: u64 = flag_value(container, "--shard-count")
            .and_then(|count| count.parse().ok())
            .expect("--shard-count is a number");
        assert_eq!(count, replicas, "--shard-count must follow spec.replicas");
        assert_eq!(flag_value(container, "--shard-index"), Some("$(POD_NAME)"));
        let pod_name = container["env"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|entry| entry["name"] == "POD_NAME")
            .expect("POD_NAME is set");
        assert_eq!(
            pod_name["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
            "the ordinal comes from the pod name"
        );
    }
}

#[test]
fn statefulset_is_governed_by_a_headless_service_and_keeps_data_on_its_own_volume() {
    let objects = objects("multi-tenant");
    let statefulset = one_of_kind(&objects, "StatefulSet");
    let service_name = statefulset["spec"]["serviceName"].as_str().expect("serviceName is set");
    assert_eq!(named(&objects, "Service", service_name)["spec"]["clusterIP"], "None");
    let claims: Vec<&str> = statefulset["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|claim| claim["metadata"]["name"].as_str())
        .collect();
    let container = containers(pod_spec(statefulset).expect("a workload"))[0];
    let data_dir = flag_value(container, "--data-dir").expect("--data-dir");
    let data_mount = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|mount| mount["mountPath"] == data_dir)
        .expect("the data directory is mounted");
    assert!(
        claims.contains(&data_mount["name"].as_str().unwrap_or_default()),
        "the data directory is a claim template"
    );
}

#[test]
fn ops_service_and_disruption_budget_select_the_statefulset_pods() {
    let objects = objects("multi-tenant");
    let statefulset = one_of_kind(&objects, "StatefulSet");
    let pod_labels = statefulset["spec"]["template"]["metadata"]["labels"].as_mapping().expect("pod labels");
    let selects_pods = |selector: &Value| {
        selector.as_mapping().is_some_and(|selector| {
            !selector.is_empty() && selector.iter().all(|(key, value)| pod_labels.get(key) == Some(value))
        })
    };
    for service in of_kind(&objects, "Service") {
        assert!(selects_pods(&service["spec"]["selector"]), "Service {} does not select the pods", name(service));
        assert!(service["spec"]["ports"].as_sequence().into_iter().flatten().any(|port| port["targetPort"] == "ops"));
    }
    assert!(
        of_kind(&objects, "Service").iter().any(|service| service["spec"]["clusterIP"] != "None"),
        "an ops Service"
    );
    let budget = one_of_kind(&objects, "PodDisruptionBudget");
    assert!(selects_pods(&budget["spec"]["selector"]["matchLabels"]), "the PodDisruptionBudget selects the pods");
}

#[test]
fn network_policy_allows_egress_only_to_dns_and_https() {
    let objects = objects("multi-tenant");
    let policy = one_of_kind(&objects, "NetworkPolicy");
    assert!(strings(&policy["spec"]["policyTypes"]).contains(&"Egress"), "the policy restricts egress");
    let rules = policy["spec"]["egress"].as_sequence().expect("egress rules");
    assert!(!rules.is_empty());
    let mut ports = BTreeSet::new();
    for rule in rules {
        let rule_ports = rule["ports"].as_sequence().expect("every egress rule names its ports");
        ports.extend(rule_ports.iter().map(|port| port["port"].as_u64().expect("a numeric port")));
    }
    assert_eq!(ports, BTreeSet::from([53, 443]));
    let https_blocks: Vec<&Value> = rules
        .iter()
        .filter(|rule| rule["ports"].as_sequence().into_iter().flatten().any(|port| port["port"] == 443))
        .flat_map(|rule| rule["to"].as_sequence().into_iter().flatten())
        .collect();
    assert!(
        https_blocks.iter().any(|peer| strings(&peer["ipBlock"]["except"]).contains(&"169.254.0.0/16")),
        "HTTPS egress leaves out the link-local range (cloud metadata)"
    );
}

#[test]
fn kustomizations_list_only_manifests_that_exist() {
    for form in FORMS {
        let dir = repo_root().join("deploy/kubernetes").join(form);
        let kustomization: Value = serde_yaml::from_str(&read(&dir.join("kustomization.yaml"))).expect("valid YAML");
        let resources = strings(&kustomization["resources"]);
        assert!(!resources.is_empty(), "{form}: kustomization lists no resources");
        for resource in resources {
            assert!(dir.join(resource).is_file(), "{form}: kustomization lists missing {resource}");
        }
    }
}

/// One Dockerfile instruction: its keyword (upper case) and its arguments, continuation lines joined.
struct Instruction {
    keyword: String,
    arguments: String,
}

/// The Dockerfile's stages, each a list of instructions starting with its FROM.
fn dockerfile_stages() -> Vec<Vec<Instruction>> {
    let text = read(&repo_root().join("Dockerfile"));
    let mut logical_lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Docker ignores blank and comment lines, inside a continued instruction too.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(continued) => current.push_str(continued),
            None => {
                current.push_str(trimmed);
                logical_lines.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for line in logical_lines.into_iter().filter(|line| !line.is_empty()) {
        let (keyword, arguments) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let instruction = Instruction { keyword: keyword.to_uppercase(), arguments: arguments.trim().to_owned() };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("the Dockerfile starts with FROM").push(instruction);
    }
    stages
}

fn arguments<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|instruction| instruction.keyword == keyword)
        .map(|instruction| instruction.arguments.as_str())
        .collect()
}

#[test]
fn dockerfile_runtime_stage_runs_the_host_as_non_root() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let runtime = stages.last().expect("a runtime stage");
    let user = arguments(runtime, "USER").last().copied().expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(uid != "root" && uid != "0" && !uid.is_empty(), "runtime USER is {user}");
    assert!(uid.parse::<u32>().is_ok(), "a numeric USER, so Kubernetes' runAsNonRoot can verify it");
    let entrypoint = arguments(runtime, "ENTRYPOINT").last().copied().expect("the runtime stage has an ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec form");
    assert_eq!(entrypoint, ["/usr/local/bin/connector-host"]);
    let command: Vec<String> =
        serde_json::from_str(arguments(runtime, "CMD").last().copied().expect("a CMD")).expect("CMD in exec form");
    assert_eq!(command.first().map(String::as_str), Some("serve"));
    for copy in arguments(runtime, "COPY") {
        assert!(copy.starts_with("--from="), "the runtime stage copies only built artifacts, not {copy}");
    }
    assert!(arguments(runtime, "RUN").is_empty(), "nothing runs in the runtime stage (it has no shell)");
}

#[test]
fn dockerfile_builds_the_component_then_embeds_it_in_the_host() {
    let stages = dockerfile_stages();
    let builder = &stages[0];
    let runs = arguments(builder, "RUN").join("\n");
    let component = runs.find("--target wasm32-wasip2").expect("the component is built for wasm32-wasip2");
    let host = runs.find("-p connector-host").expect("the host is built");
    assert!(component < host, "the component is built before the host that embeds it");
    assert!(runs.contains("rustup target add wasm32-wasip2"));
    assert!(runs.contains("AZURE_CONNECTOR_WASM="), "the host build is given the prebuilt component");
    assert_eq!(runs.matches("cargo build --release --locked").count(), 2, "both builds are release and --locked");
    assert!(runs.contains("--mount=type=cache"), "BuildKit cache mounts");
}

#[test]
fn dockerignore_keeps_build_outputs_and_snapshots_out_of_the_context() {
    let ignored: BTreeSet<String> = read(&repo_root().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_owned())
        .collect();
    for wanted in ["target", "connector/target", "*.db", ".git"] {
        assert!(ignored.contains(wanted), ".dockerignore does not leave out {wanted}");
    }
}
