//! What the reconciler's tests share: the API emulator with Serin's Canary CRD, the `test`
//! namespace and the seed Canary in it.

use kube::{Api, Client, api::PostParams};
use serin_api::Canary;
use serin_sandbox::kube_api::KubeApi;

/// The emulator with the Canary CRD and the seed Canary created in `test`; its client and the
/// Canaries of `test`.
pub async fn emulator_with_seed() -> (KubeApi, Client, Api<Canary>) {
    let api = KubeApi::start(0).await.expect("start");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("deploy/crds/canaries.flagger.app.yaml")).expect("crd");
    api.install_crd(serde_saphyr::from_str(&text).expect("yaml"))
        .expect("install");
    api.create_namespace("test");
    let client = api.client().expect("client");
    let canaries: Api<Canary> = Api::namespaced(client.clone(), "test");
    let text = std::fs::read_to_string(root.join("testdata/seed/podinfo-canary.yaml")).expect("seed");
    let canary: Canary = serde_saphyr::from_str(&text).expect("canary");
    canaries.create(&PostParams::default(), &canary).await.expect("create");
    (api, client, canaries)
}
