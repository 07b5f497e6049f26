//! The reconcile loop: wiring of the pipeline steps, the triggers, deletion
//! through a finalizer, per-object backoff, and Events.
//!
//! Pipeline for one tenant: suspended? → ccid claim → generated keys → read
//! Secrets ([`crate::secrets`]) → build the body ([`crate::body`]) → skip when
//! the inputs are unchanged → POST ([`crate::iwd`]) → status ([`crate::status`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use ring::hmac;
use tokio::sync::broadcast;

use crate::body::{self, WIRE_VERSION};
use crate::crd::{Applied, DeletionPolicy, Fingerprint, IwdTenant, IwdTenantStatus};
use crate::error::Error;
use crate::iwd::{Deleted, IwdClient, Removal};
use crate::metrics::{Metrics, ReadyLabels, ReasonLabel, ResultLabel};
use crate::status::{self, Outcome};
use crate::{apikeys, duration, secrets};

/// The finalizer that holds a tenant until IWD has been told.
pub const FINALIZER: &str = "iwd.cxops.io/deprovision";
/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "iwd-operator";

/// Operator-level settings the reconciler needs.
pub struct Settings {
    /// The IWD service the operator calls. Operator-level on purpose: the admin key
    /// is only ever sent here, never to a URL taken from a tenant.
    pub iwd_url: String,
    pub resync_interval: Duration,
    pub concurrency: u16,
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    iwd: IwdClient,
    settings: Settings,
    recorder: Recorder,
    stores: Vec<Store<IwdTenant>>,
    /// Keyed digests of the last body each tenant had accepted, in memory only:
    /// they let a Secret change that does not change the body (labels, an
    /// unrelated key) pass without a call. The key is random per process.
    /// With it, what was applied: the cache may not show the status write yet
    /// when the next trigger arrives, and must not cause a second call.
    digests: Mutex<HashMap<ObjectRef<IwdTenant>, (hmac::Tag, Applied)>>,
    digest_key: hmac::Key,
    attempts: Mutex<HashMap<ObjectRef<IwdTenant>, u32>>,
    /// The last failed request per tenant (keyed digest of body and admin key),
    /// so that the same request is not sent again: terminal failures wait for a
    /// change, transient ones for their backoff — whatever event wakes the tenant
    /// (including the operator's own status writes).
    failures: Mutex<HashMap<ObjectRef<IwdTenant>, Failure>>,
    /// Failed deletions, so that the next attempt waits for its time.
    delete_retry: Mutex<HashMap<ObjectRef<IwdTenant>, DeleteRetry>>,
    /// Bumped whenever the admin key file changes.
    key_epoch: std::sync::atomic::AtomicU64,
    metrics: Arc<Metrics>,
    health: Arc<crate::admin::Health>,
}

/// Sets the `tenants` gauge from the tenant caches.
fn count_tenants(ctx: &Context) {
    let mut counts: HashMap<ReadyLabels, i64> = HashMap::new();
    for tenant in ctx.all_tenants() {
        let (ready, reason) = match tenant
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == status::READY))
        {
            Some(c) => (c.status.clone(), c.reason.clone()),
            None => ("Unknown".to_owned(), "None".to_owned()),
        };
        *counts.entry(ReadyLabels { ready, reason }).or_default() += 1;
    }
    ctx.metrics.tenants.clear();
    for (labels, n) in counts {
        ctx.metrics.tenants.get_or_create(&labels).set(n);
    }
}

fn record(ctx: &Context, result: &'static str) {
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabel { result })
        .inc();
}

fn record_error(ctx: &Context, error: &Error) {
    record(ctx, "failed");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ReasonLabel {
            reason: error.reason().to_owned(),
        })
        .inc();
}

/// When a failed deletion may be tried again.
#[derive(Clone, Copy)]
struct DeleteRetry {
    /// Transient failures: after this instant. Terminal ones: never on their own.
    at: Option<tokio::time::Instant>,
    /// Terminal failures: the spec generation and key epoch they failed with; a
    /// change of either allows a new attempt.
    generation: i64,
    key_epoch: u64,
}

struct Failure {
    request: hmac::Tag,
    error: Error,
    retry_at: Option<tokio::time::Instant>,
}

/// A provisioning failure, and whether it was only remembered (no call made).
struct Failed {
    error: Error,
    /// Time left before the remembered transient failure may be retried.
    wait: Option<Duration>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed { error, wait: None }
    }
}

/// How often a tenant that lost a ccid claim looks again (locally, without any
/// call) whether the claim has been released.
const CLAIM_RECHECK: Duration = Duration::from_secs(30);

/// The longest nominal wait between attempts (jitter adds up to 20 %): after
/// IWD comes back, every waiting tenant retries within 72 s, or as fast as the
/// rate limit lets the queue drain if that takes longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Context {
    /// The wait before a tenant's next attempt after a transient failure: 1 s
    /// doubling per failure up to [`MAX_BACKOFF`], ±20 % jitter, never sooner
    /// than IWD's `Retry-After`.
    fn backoff(&self, tenant: &ObjectRef<IwdTenant>, retry_after: Option<Duration>) -> Duration {
        let mut attempts = lock(&self.attempts);
        let n = attempts.entry(tenant.clone()).or_default();
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1).saturating_mul(1 << (*n - 1).min(9));
        let capped = base.min(MAX_BACKOFF);
        let jittered = capped.mul_f64(0.8 + fastrand_f64() * 0.4);
        jittered.max(retry_after.unwrap_or_default())
    }

    /// How long a failed deletion must still wait; `Some(None)` means until a
    /// change (of the spec or the key file).
    fn delete_wait(&self, tenant: &IwdTenant) -> Option<Option<Duration>> {
        let retry = lock(&self.delete_retry)
            .get(&ObjectRef::from_obj(tenant))
            .copied()?;
        match retry.at {
            Some(at) => {
                let left = at.saturating_duration_since(tokio::time::Instant::now());
                (!left.is_zero()).then_some(Some(left))
            }
            None => {
                let unchanged = retry.generation == tenant.metadata.generation.unwrap_or_default()
                    && retry.key_epoch == self.key_epoch.load(std::sync::atomic::Ordering::SeqCst);
                unchanged.then_some(None)
            }
        }
    }

    fn reset_backoff(&self, tenant: &ObjectRef<IwdTenant>) {
        lock(&self.attempts).remove(tenant);
    }

    async fn event(
        &self,
        tenant: &IwdTenant,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &tenant.object_ref(&())).await {
            tracing::warn!(%error, "could not publish an Event");
        }
    }

    fn all_tenants(&self) -> Vec<Arc<IwdTenant>> {
        self.stores.iter().flat_map(Store::state).collect()
    }
}

fn fastrand_f64() -> f64 {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The tenant that holds a ccid among all that ask for it: one that already
/// provisioned it wins; otherwise the oldest (then by namespace/name).
fn ccid_owner(tenants: &[Arc<IwdTenant>], ccid: &str) -> Option<Arc<IwdTenant>> {
    tenants
        .iter()
        .filter(|t| t.spec.tenant.ccid == ccid && t.metadata.deletion_timestamp.is_none())
        .min_by_key(|t| {
            let provisioned = t
                .status
                .as_ref()
                .and_then(|s| s.applied.as_ref())
                .is_some_and(|a| a.ccid == ccid);
            (
                !provisioned,
                t.metadata.creation_timestamp.as_ref().map(|ts| ts.0),
                t.namespace(),
                t.name_any(),
            )
        })
        .cloned()
}

/// The shortest re-send period a tenant may ask for (the CRD enforces it too);
/// the operator's own `--resync-interval` is trusted as given.
pub const MIN_TENANT_RESYNC: Duration = Duration::from_secs(60);

fn resync_interval(tenant: &IwdTenant, settings: &Settings) -> Duration {
    match tenant
        .spec
        .resync_interval
        .as_deref()
        .and_then(duration::parse)
    {
        Some(interval) if interval.is_zero() => interval,
        Some(interval) => interval.max(MIN_TENANT_RESYNC),
        None => settings.resync_interval,
    }
}

/// Waits until a store has its initial list; `false` if its writer is gone.
/// Polled again and again: kube-runtime wakes only the latest waiter of a
/// store's readiness, and several tasks wait on it.
async fn store_ready(store: &Store<IwdTenant>) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
            Ok(result) => return result.is_ok(),
            Err(_) => continue,
        }
    }
}

/// What a successful apply did.
struct Provisioned {
    applied: Applied,
    called: bool,
    /// When to re-assert, if resync is on.
    resync_in: Option<Duration>,
}

async fn provision(tenant: &IwdTenant, ctx: &Context) -> Result<Provisioned, Failed> {
    let reference = ObjectRef::from_obj(tenant);
    let ccid = &tenant.spec.tenant.ccid;
    let iwd_url = &ctx.settings.iwd_url;

    // Claims are judged on the full picture: every watched namespace listed.
    for store in &ctx.stores {
        if !store_ready(store).await {
            return Err(Error::Kube("the tenant watch stopped".into()).into());
        }
    }
    if let Some(owner) = ccid_owner(&ctx.all_tenants(), ccid)
        && owner.uid() != tenant.uid()
    {
        // Another namespace's tenant is not named: its existence is all we say.
        let owner = if owner.namespace() == tenant.namespace() {
            format!("IwdTenant {}", owner.name_any())
        } else {
            "an IwdTenant in another namespace".to_owned()
        };
        return Err(Error::DuplicateCcid {
            ccid: ccid.clone(),
            owner,
        }
        .into());
    }

    apikeys::ensure(&ctx.client, tenant).await?;
    let namespace = tenant.namespace().unwrap_or_default();
    let resolved = secrets::read(&ctx.client, &namespace, &secrets::references(tenant)).await?;
    let body = body::build(tenant, &resolved, iwd_url)?;
    let fingerprint = Fingerprint {
        generation: tenant.metadata.generation.unwrap_or_default(),
        secrets: resolved.identities.clone(),
        wire_version: WIRE_VERSION,
        iwd_url: iwd_url.clone(),
    };
    let json = body.to_json();
    let digest = hmac::sign(&ctx.digest_key, &json);

    let interval = resync_interval(tenant, &ctx.settings);
    let remembered = lock(&ctx.digests).get(&reference).cloned();
    let in_status = tenant
        .status
        .as_ref()
        .and_then(|s| s.applied.clone())
        .filter(|a| a.ccid == *ccid);
    // The newer of what status shows and what this process applied (a status
    // write may not have reached the cache yet).
    let previous = match (in_status, remembered.as_ref().map(|(_, a)| a.clone())) {
        (Some(s), Some(m)) => Some(if m.time.0 > s.time.0 { m } else { s }),
        (s, m) => s.or(m),
    }
    .filter(|a| a.ccid == *ccid);
    if let Some(previous) = previous.as_ref() {
        let age = jiff::Timestamp::now().duration_since(previous.time.0);
        let age = Duration::try_from(age).unwrap_or_default();
        let resync_due = !interval.is_zero() && age >= interval;
        let same_inputs = previous.fingerprint == fingerprint;
        let same_body = remembered
            .as_ref()
            .is_some_and(|(d, _)| d.as_ref() == digest.as_ref());
        if !resync_due && (same_inputs || same_body) {
            return Ok(Provisioned {
                applied: Applied {
                    fingerprint,
                    ..previous.clone()
                },
                called: false,
                resync_in: (!interval.is_zero()).then(|| interval.saturating_sub(age)),
            });
        }
    }

    // The same request as a remembered failure is not sent again before its time.
    let request = {
        let mut signer = hmac::Context::with_key(&ctx.digest_key);
        signer.update(tenant.uid().unwrap_or_default().as_bytes());
        signer.update(b"\0");
        signer.update(&json);
        signer.update(b"\0");
        signer.update(secrecy::ExposeSecret::expose_secret(&ctx.iwd.admin_key_bytes()).as_bytes());
        signer.sign()
    };
    if let Some(failure) = lock(&ctx.failures).get(&reference)
        && failure.request.as_ref() == request.as_ref()
    {
        match failure.retry_at {
            None => return Err(failure.error.clone().into()),
            Some(at) if at > tokio::time::Instant::now() => {
                return Err(Failed {
                    error: failure.error.clone(),
                    wait: Some(at - tokio::time::Instant::now()),
                });
            }
            Some(_) => {}
        }
    }

    if let Err(error) = ctx.iwd.provision(iwd_url, &body).await {
        // A timeout or 5xx may still have been applied: what IWD holds is unknown.
        if !error.is_terminal() {
            lock(&ctx.digests).remove(&reference);
        }
        let retry_at = (!error.is_terminal())
            .then(|| tokio::time::Instant::now() + ctx.backoff(&reference, error.retry_after()));
        let wait = retry_at.map(|at| at - tokio::time::Instant::now());
        lock(&ctx.failures).insert(
            reference,
            Failure {
                request,
                error: error.clone(),
                retry_at,
            },
        );
        return Err(Failed { error, wait });
    }
    lock(&ctx.failures).remove(&reference);
    let applied = Applied {
        ccid: ccid.clone(),
        time: Time(jiff::Timestamp::now()),
        fingerprint,
    };
    lock(&ctx.digests).insert(reference, (digest, applied.clone()));
    Ok(Provisioned {
        applied,
        called: true,
        resync_in: (!interval.is_zero()).then_some(interval),
    })
}

/// Writes the status by server-side apply, unless it is unchanged.
async fn write_status(
    tenant: &IwdTenant,
    status: IwdTenantStatus,
    ctx: &Context,
) -> Result<(), Error> {
    if tenant.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<IwdTenant> =
        Api::namespaced(ctx.client.clone(), &tenant.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": IwdTenant::api_version(&()),
        "kind": IwdTenant::kind(&()),
        "status": status,
    });
    api.patch_status(
        &tenant.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube)?;
    Ok(())
}

fn ready_reason(tenant: &IwdTenant) -> Option<(String, String)> {
    tenant
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == status::READY)
        .map(|c| (c.reason.clone(), c.message.clone()))
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand_f64() * 0.2)
}

async fn apply(tenant: Arc<IwdTenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let reference = ObjectRef::from_obj(&*tenant);
    let generation = tenant.metadata.generation.unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    if tenant.spec.suspend {
        let next = status::next(tenant.status.as_ref(), generation, Outcome::Suspended, now);
        write_status(&tenant, next, &ctx).await?;
        ctx.reset_backoff(&reference);
        record(&ctx, "suspended");
        return Ok(Action::await_change());
    }
    // A tenant seen for the first time says at once that work has started, so that
    // waiters (kstatus, Argo CD) do not take the missing status for "done".
    // (Not when this process already provisioned it: the cache is just behind.)
    let known = lock(&ctx.digests).contains_key(&reference);
    let tenant = if tenant.status.is_none() && !known {
        let started = status::next(None, generation, Outcome::Provisioning, now.clone());
        write_status(&tenant, started.clone(), &ctx).await?;
        let mut seen = (*tenant).clone();
        seen.status = Some(started);
        Arc::new(seen)
    } else {
        tenant
    };
    match provision(&tenant, &ctx).await {
        Ok(done) => {
            let ccid = done.applied.ccid.clone();
            let next = status::next(
                tenant.status.as_ref(),
                generation,
                Outcome::Provisioned {
                    applied: done.applied,
                },
                now,
            );
            write_status(&tenant, next, &ctx).await?;
            ctx.reset_backoff(&reference);
            record(
                &ctx,
                if done.called {
                    "provisioned"
                } else {
                    "unchanged"
                },
            );
            if done.called {
                tracing::info!(ccid, "provisioned in IWD");
                ctx.event(
                    &tenant,
                    EventType::Normal,
                    "Provisioned",
                    "Provision",
                    format!("IWD accepted the configuration of ccid {ccid}"),
                )
                .await;
            }
            Ok(done
                .resync_in
                .map_or_else(Action::await_change, |d| Action::requeue(jitter(d))))
        }
        Err(Failed { error, wait }) => {
            let changed =
                ready_reason(&tenant) != Some((error.reason().to_owned(), error.to_string()));
            let mut next = status::next(
                tenant.status.as_ref(),
                generation,
                Outcome::Failed(&error),
                now,
            );
            // A call that failed ambiguously (timeout, 5xx) may have been applied:
            // deletion must deprovision that ccid even if no call ever succeeds.
            if matches!(error, Error::IwdUnavailable { .. }) {
                next.pending_ccid = Some(tenant.spec.tenant.ccid.clone());
            }
            // A tenant that lost its ccid claim does not own what it applied.
            if matches!(error, Error::DuplicateCcid { .. }) {
                next.applied = None;
                next.pending_ccid = None;
            }
            write_status(&tenant, next, &ctx).await?;
            record_error(&ctx, &error);
            tracing::warn!(reason = error.reason(), message = %error, "provisioning failed");
            if changed {
                let reason = match &error {
                    Error::SecretNotFound { .. }
                    | Error::SecretKeyMissing { .. }
                    | Error::SecretValueInvalid { .. } => "SecretMissing",
                    Error::DuplicateCcid { .. } => "DuplicateCcid",
                    _ => "ProvisionFailed",
                };
                ctx.event(
                    &tenant,
                    EventType::Warning,
                    reason,
                    "Provision",
                    error.to_string(),
                )
                .await;
            }
            match error {
                Error::DuplicateCcid { .. } => Ok(Action::requeue(CLAIM_RECHECK)),
                _ if error.is_terminal() => Ok(Action::await_change()),
                _ => Ok(Action::requeue(wait.unwrap_or_else(|| {
                    ctx.backoff(&reference, error.retry_after())
                }))),
            }
        }
    }
}

/// Forgets everything remembered about a tenant whose finalizer is released.
fn forget(ctx: &Context, reference: &ObjectRef<IwdTenant>) {
    ctx.reset_backoff(reference);
    lock(&ctx.digests).remove(reference);
    lock(&ctx.failures).remove(reference);
    lock(&ctx.delete_retry).remove(reference);
}

async fn cleanup(tenant: Arc<IwdTenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let reference = ObjectRef::from_obj(&*tenant);
    let released = Ok(Action::await_change());
    if tenant.spec.suspend {
        let note =
            "the tenant is suspended: deleted without calling IWD, its configuration stays in IWD";
        ctx.event(
            &tenant,
            EventType::Warning,
            "Orphaned",
            "Deprovision",
            note.into(),
        )
        .await;
        forget(&ctx, &reference);
        return released;
    }
    // Only the spec's ccid, and only if this tenant provisioned it (or may have:
    // see `pendingCcid`): status alone never decides what is deleted.
    let ccid = tenant.spec.tenant.ccid.clone();
    let status = tenant.status.as_ref();
    let provisioned = status
        .and_then(|s| s.applied.as_ref())
        .is_some_and(|a| a.ccid == ccid)
        || status.and_then(|s| s.pending_ccid.as_deref()) == Some(ccid.as_str());
    if !provisioned {
        // Never provisioned (or lost a ccid claim): nothing to remove.
        forget(&ctx, &reference);
        return released;
    }
    let claimed_by_another = ctx.all_tenants().iter().any(|t| {
        t.spec.tenant.ccid == ccid
            && t.uid() != tenant.uid()
            && t.metadata.deletion_timestamp.is_none()
    });
    let removal = match tenant.spec.deletion_policy {
        _ if claimed_by_another => {
            let note = format!("ccid {ccid} is claimed by another IwdTenant: left in IWD for it");
            ctx.event(&tenant, EventType::Normal, "Orphaned", "Deprovision", note)
                .await;
            forget(&ctx, &reference);
            return released;
        }
        DeletionPolicy::Orphan => {
            let note = format!("deletionPolicy Orphan: ccid {ccid} left in IWD");
            ctx.event(&tenant, EventType::Normal, "Orphaned", "Deprovision", note)
                .await;
            forget(&ctx, &reference);
            return released;
        }
        DeletionPolicy::DeleteServices => Removal::Services(&tenant.spec.delete_services),
        DeletionPolicy::DeleteTenant => Removal::Tenant,
    };
    match ctx
        .iwd
        .deprovision(&ctx.settings.iwd_url, &ccid, removal)
        .await
    {
        Ok(deleted) => {
            let what = match deleted {
                Deleted::Removed => "removed",
                Deleted::AlreadyGone => "was already gone",
            };
            tracing::info!(ccid = %ccid, what, "deprovisioned in IWD");
            let note = format!("ccid {ccid} {what} in IWD");
            ctx.event(
                &tenant,
                EventType::Normal,
                "Deprovisioned",
                "Deprovision",
                note,
            )
            .await;
            record(&ctx, "deprovisioned");
            forget(&ctx, &reference);
            released
        }
        Err(error) => {
            // Retried after the backoff (or on a change for terminal errors),
            // whatever event wakes the tenant meanwhile: see `reconcile`.
            let wait = (!error.is_terminal()).then(|| ctx.backoff(&reference, error.retry_after()));
            let retry = DeleteRetry {
                at: wait.map(|w| tokio::time::Instant::now() + w),
                generation: tenant.metadata.generation.unwrap_or_default(),
                key_epoch: ctx.key_epoch.load(std::sync::atomic::Ordering::SeqCst),
            };
            lock(&ctx.delete_retry).insert(reference.clone(), retry);
            let changed =
                ready_reason(&tenant).is_none_or(|(reason, _)| reason != "Deprovisioning");
            let generation = tenant.metadata.generation.unwrap_or_default();
            let now = Time(jiff::Timestamp::now());
            let next = status::next(
                tenant.status.as_ref(),
                generation,
                Outcome::Deprovisioning(&error),
                now,
            );
            write_status(&tenant, next, &ctx).await?;
            record_error(&ctx, &error);
            tracing::warn!(reason = error.reason(), message = %error, "deprovisioning failed");
            if changed {
                ctx.event(
                    &tenant,
                    EventType::Warning,
                    "DeprovisionFailed",
                    "Deprovision",
                    error.to_string(),
                )
                .await;
            }
            Err(error)
        }
    }
}

async fn reconcile(tenant: Arc<IwdTenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = tenant.namespace().unwrap_or_default();
    let reference = ObjectRef::from_obj(&*tenant);
    // A deletion that failed waits for its backoff (transient) or for a change of
    // the spec or the key file (terminal), whatever else wakes the tenant.
    if tenant.metadata.deletion_timestamp.is_some() {
        match ctx.delete_wait(&tenant) {
            Some(Some(left)) => return Ok(Action::requeue(left)),
            Some(None) => return Ok(Action::await_change()),
            None => {}
        }
    }
    ctx.metrics.reconciles_in_flight.inc();
    ctx.health.reconcile_started();
    let started = std::time::Instant::now();
    let result = reconcile_inner(tenant, ctx.clone(), namespace, reference).await;
    ctx.health.reconcile_finished();
    ctx.metrics.reconciles_in_flight.dec();
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(
    tenant: Arc<IwdTenant>,
    ctx: Arc<Context>,
    namespace: String,
    reference: ObjectRef<IwdTenant>,
) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", tenant = %tenant.name_any(), namespace = %namespace,
        generation = tenant.metadata.generation.unwrap_or_default());
    let api: Api<IwdTenant> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = tracing::Instrument::instrument(
        finalizer(&api, FINALIZER, tenant, |event| async {
            match event {
                finalizer::Event::Apply(t) => apply(t, ctx.clone()).await,
                finalizer::Event::Cleanup(t) => cleanup(t, ctx.clone()).await,
            }
        }),
        span,
    )
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::CleanupFailed(error)) if error.is_terminal() => {
            Ok(Action::await_change())
        }
        Err(finalizer::Error::CleanupFailed(_)) => {
            let wait = lock(&ctx.delete_retry).get(&reference).and_then(|r| r.at);
            Ok(Action::requeue(wait.map_or(Duration::from_secs(1), |at| {
                at.saturating_duration_since(tokio::time::Instant::now())
            })))
        }
        Err(finalizer::Error::ApplyFailed(error)) => Ok(Action::requeue(
            ctx.backoff(&reference, error.retry_after()),
        )),
        Err(other) => Err(Error::Kube(other.to_string())),
    }
}

fn error_policy(tenant: Arc<IwdTenant>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(tenant = %tenant.name_any(), reason = error.reason(), message = %error, "reconcile failed");
    Action::requeue(ctx.backoff(&ObjectRef::from_obj(&*tenant), None))
}

/// The tenants as the controller caches them: without `managedFields`, which
/// nothing here reads and which would otherwise be most of each cached object
/// (see the memory figures in docs/benchmarks.md).
fn tenant_stream(
    api: Api<IwdTenant>,
    writer: reflector::store::Writer<IwdTenant>,
) -> impl futures::Stream<Item = Result<IwdTenant, watcher::Error>> + Send + 'static {
    let stream =
        watcher::watcher(api, watcher::Config::default().any_semantic()).modify(|tenant| {
            tenant.managed_fields_mut().clear();
        });
    reflector::reflector(writer, stream).applied_objects()
}

/// Which namespaces to watch: all, or the listed ones.
/// Secrets are watched as metadata only (`PartialObjectMeta`): their contents
/// are read with a GET when a tenant needs them, never cached.
pub fn scopes(
    client: &Client,
    namespaces: &[String],
) -> Vec<(Api<IwdTenant>, Api<PartialObjectMeta<Secret>>)> {
    if namespaces.is_empty() {
        vec![(Api::all(client.clone()), Api::all(client.clone()))]
    } else {
        namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                )
            })
            .collect()
    }
}

/// Runs the controllers until `stop` fires; then no new work is taken and the
/// reconciles in flight finish. `health.synced` turns true once every tenant
/// watch has its initial list.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: Client,
    iwd: IwdClient,
    settings: Settings,
    namespaces: &[String],
    key_changes: tokio::sync::mpsc::Receiver<()>,
    stop: broadcast::Sender<()>,
    health: Arc<crate::admin::Health>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let (key_tx, _) = broadcast::channel::<()>(16);
    let mut controllers = Vec::new();
    let mut stores = Vec::new();
    for (tenants, secrets_api) in scopes(&client, namespaces) {
        let writer = reflector::store::Writer::default();
        let store = writer.as_reader();
        let controller = Controller::for_stream(tenant_stream(tenants, writer), store.clone())
            .with_config(ControllerConfig::default().concurrency(settings.concurrency));
        stores.push(store.clone());
        let mapper_store = store.clone();
        let controller = controller
            .watches(
                secrets_api,
                watcher::Config::default().any_semantic(),
                move |secret| {
                    let namespace = secret.namespace();
                    let name = secret.name_any();
                    mapper_store
                        .state()
                        .into_iter()
                        .filter(|t| t.namespace() == namespace)
                        .filter(|t| secrets::refers_to(t, &name))
                        .map(|t| ObjectRef::from_obj(&*t))
                        .collect::<Vec<_>>()
                },
            )
            .reconcile_all_on(tokio_stream_from_broadcast(key_tx.subscribe()).map(|_| ()))
            .graceful_shutdown_on({
                let mut stop = stop.subscribe();
                async move {
                    let _ = stop.recv().await;
                }
            });
        controllers.push(controller);
    }
    let ctx = Arc::new(Context {
        client,
        iwd,
        settings,
        recorder,
        stores,
        digests: Mutex::default(),
        digest_key: hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("cannot generate a random key"))?,
        attempts: Mutex::default(),
        failures: Mutex::default(),
        delete_retry: Mutex::default(),
        key_epoch: std::sync::atomic::AtomicU64::new(0),
        metrics,
        health: health.clone(),
    });
    // Tenants by Ready status and reason, recounted from the caches (no API call).
    let count_ctx = ctx.clone();
    tokio::spawn(async move {
        loop {
            count_tenants(&count_ctx);
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let synced_stores = ctx.stores.clone();
    tokio::spawn(async move {
        for store in synced_stores {
            // Polled again and again: kube-runtime wakes only the latest waiter of
            // a store's readiness, and the controller waits on it too.
            loop {
                match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return,
                    Err(_) => continue,
                }
            }
        }
        health
            .synced
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!("tenant watches synced");
    });
    // Key file changes wake every controller.
    let epoch_ctx = ctx.clone();
    tokio::spawn(async move {
        let mut key_changes = key_changes;
        while key_changes.recv().await.is_some() {
            epoch_ctx
                .key_epoch
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = key_tx.send(());
        }
    });
    let runs = controllers.into_iter().map(|controller| {
        controller
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "controller event");
                }
            })
    });
    futures::future::join_all(runs).await;
    Ok(())
}

/// A broadcast receiver as a stream (lagging receivers skip what they missed).
fn tokio_stream_from_broadcast<T: Clone + Send + 'static>(
    receiver: broadcast::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(item) => return Some((item, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, ccid: &str, created: i64, provisioned: bool) -> Arc<IwdTenant> {
        let mut t: IwdTenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "iwd.cxops.io/v1alpha1", "kind": "IwdTenant",
            "metadata": {"name": name, "namespace": "ns", "uid": name,
                "creationTimestamp": jiff::Timestamp::from_second(created).expect("valid").to_string()},
            "spec": {"tenant": {"id": "1", "name": "t", "ccid": ccid, "apiKeySecretRef": {"name": "s", "key": "k"}},
                "iwd": {"db": {"host": "h", "database": "d", "user": "u", "passwordSecretRef": {"name": "s", "key": "p"}}}}
        }))
        .expect("tenant");
        if provisioned {
            t.status = Some(IwdTenantStatus {
                applied: Some(Applied {
                    ccid: ccid.into(),
                    time: Time(jiff::Timestamp::from_second(created).expect("valid")),
                    fingerprint: Fingerprint {
                        generation: 1,
                        secrets: Default::default(),
                        wire_version: 1,
                        iwd_url: "u".into(),
                    },
                }),
                ..IwdTenantStatus::default()
            });
        }
        Arc::new(t)
    }

    #[test]
    fn the_oldest_claim_wins_unless_another_already_provisioned() {
        let old = tenant("old", "c", 100, false);
        let new = tenant("new", "c", 200, false);
        let other = tenant("other", "d", 50, false);
        let all = vec![new.clone(), old.clone(), other];
        assert_eq!(
            ccid_owner(&all, "c").map(|t| t.name_any()),
            Some("old".into())
        );
        let new_provisioned = tenant("new", "c", 200, true);
        let all = vec![new_provisioned, old];
        assert_eq!(
            ccid_owner(&all, "c").map(|t| t.name_any()),
            Some("new".into())
        );
    }
}
