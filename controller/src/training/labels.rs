//! The training operator's labels, which its SDK and users select pods by.

pub const JOB_NAME: &str = "training.kubeflow.org/job-name";
pub const OPERATOR_NAME: &str = "training.kubeflow.org/operator-name";
pub const REPLICA_TYPE: &str = "training.kubeflow.org/replica-type";
pub const REPLICA_INDEX: &str = "training.kubeflow.org/replica-index";
pub const JOB_ROLE: &str = "training.kubeflow.org/job-role";
/// How many times the controller has recreated this replica (ExitCode restarts): carried from
/// each pod to its replacement, so that backoffLimit counts them.
pub const RECREATIONS: &str = "training.osprey.dev/recreations";
