//! Organisation (directory) events (`directory.proto`).

use super::common::{spec_from_pb, spec_to_pb};
use super::{At, ProtoEnum, id, required};
use crate::error::DecodeError;
use crate::pb;
use crate::pb::event::Payload as P;
use wasl_domain::directory::{DisplayName, OrgKind, OrganisationEvent};

pub(super) fn to_pb(event: &OrganisationEvent) -> P {
    match event {
        OrganisationEvent::Registered { org_id, name, kind } => P::OrganisationRegistered(pb::OrganisationRegistered {
            org_id: org_id.to_string(),
            name: name.as_str().to_owned(),
            kind: kind.to_pb(),
        }),
        OrganisationEvent::Updated { name, kind } => P::OrganisationUpdated(pb::OrganisationUpdated {
            name: name.as_str().to_owned(),
            kind: kind.to_pb(),
        }),
        OrganisationEvent::ServiceAdded { service_id, spec } => P::ServiceAdded(pb::ServiceAdded {
            service_id: service_id.to_string(),
            spec: Some(spec_to_pb(spec)),
        }),
        OrganisationEvent::ServiceUpdated { service_id, spec } => P::ServiceUpdated(pb::ServiceUpdated {
            service_id: service_id.to_string(),
            spec: Some(spec_to_pb(spec)),
        }),
        OrganisationEvent::ServiceAvailabilityChanged {
            service_id,
            accepting,
            capacity,
        } => P::ServiceAvailabilityChanged(pb::ServiceAvailabilityChanged {
            service_id: service_id.to_string(),
            accepting: *accepting,
            capacity: *capacity,
        }),
        OrganisationEvent::ServiceRetired { service_id } => P::ServiceRetired(pb::ServiceRetired {
            service_id: service_id.to_string(),
        }),
    }
}

pub(super) fn registered(m: &pb::OrganisationRegistered) -> Result<OrganisationEvent, DecodeError> {
    Ok(OrganisationEvent::Registered {
        org_id: id(&m.org_id, "OrganisationRegistered.org_id")?,
        name: DisplayName::parse(&m.name).at("OrganisationRegistered.name")?,
        kind: OrgKind::from_pb(m.kind, "OrganisationRegistered.kind")?,
    })
}

pub(super) fn updated(m: &pb::OrganisationUpdated) -> Result<OrganisationEvent, DecodeError> {
    Ok(OrganisationEvent::Updated {
        name: DisplayName::parse(&m.name).at("OrganisationUpdated.name")?,
        kind: OrgKind::from_pb(m.kind, "OrganisationUpdated.kind")?,
    })
}

pub(super) fn service_added(m: pb::ServiceAdded) -> Result<OrganisationEvent, DecodeError> {
    Ok(OrganisationEvent::ServiceAdded {
        service_id: id(&m.service_id, "ServiceAdded.service_id")?,
        spec: spec_from_pb(required(m.spec, "ServiceAdded.spec")?)?,
    })
}

pub(super) fn service_updated(m: pb::ServiceUpdated) -> Result<OrganisationEvent, DecodeError> {
    Ok(OrganisationEvent::ServiceUpdated {
        service_id: id(&m.service_id, "ServiceUpdated.service_id")?,
        spec: spec_from_pb(required(m.spec, "ServiceUpdated.spec")?)?,
    })
}

pub(super) fn service_availability_changed(
    m: &pb::ServiceAvailabilityChanged,
) -> Result<OrganisationEvent, DecodeError> {
    Ok(OrganisationEvent::ServiceAvailabilityChanged {
        service_id: id(&m.service_id, "ServiceAvailabilityChanged.service_id")?,
        accepting: m.accepting,
        capacity: m.capacity,
    })
}

pub(super) fn service_retired(m: &pb::ServiceRetired) -> Result<OrganisationEvent, DecodeError> {
    Ok(OrganisationEvent::ServiceRetired {
        service_id: id(&m.service_id, "ServiceRetired.service_id")?,
    })
}
