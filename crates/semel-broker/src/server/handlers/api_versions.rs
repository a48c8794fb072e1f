//! ApiVersions (18).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::server::dispatch::{RequestContext, Response};
use crate::server::versions::SUPPORTED;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED.iter().map(|s| ApiVersion::default().with_api_key(s.key as i16).with_min_version(s.min).with_max_version(s.max)).collect()
}

/// The v0 answer to a version semel does not know.
pub(crate) fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(api_keys())
}

pub(crate) async fn handle(_ctx: &RequestContext, _request: ApiVersionsRequest) -> Response<ApiVersionsResponse> {
    // No features are advertised: semel finalizes none (transaction.version stays at 0).
    Response::Now(ApiVersionsResponse::default().with_api_keys(api_keys()).with_finalized_features_epoch(-1))
}
