//! The safe-zone editor of the selected pet: centre and radius, saved as a retained message
//! on `pets/{id}/geofence` so every open browser (and the tracker's owner) sees the same zone.

use yew::prelude::*;

use super::feed::MqttHandle;
use super::pet_row::PetRef;
use crate::model::topic::{self, Kind};
use crate::model::{Geofence, LatLng, Pet};

/// The radius a new zone starts with, in metres.
const DEFAULT_RADIUS_M: f64 = 200.0;

/// Props of [`FenceEditor`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct FenceEditorProps {
    /// The pet whose zone is edited.
    pub(crate) pet: PetRef,
    /// The client to publish with.
    pub(crate) client: Option<MqttHandle>,
}

/// The form's fields, as typed.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    lat: String,
    lng: String,
    radius: String,
}

impl Fields {
    /// The pet's zone, else one around the pet, else empty.
    fn initial(pet: &Pet) -> Self {
        let around_pet = pet.position().map(|p| Geofence {
            lat: p.lat,
            lng: p.lng,
            radius: DEFAULT_RADIUS_M,
        });
        pet.geofence.or(around_pet).map_or_else(
            || Self {
                lat: String::new(),
                lng: String::new(),
                radius: format!("{DEFAULT_RADIUS_M:.0}"),
            },
            Self::from_zone,
        )
    }

    fn from_zone(zone: Geofence) -> Self {
        Self {
            lat: format!("{:.6}", zone.lat),
            lng: format!("{:.6}", zone.lng),
            radius: format!("{:.0}", zone.radius),
        }
    }

    fn parse(&self) -> Result<Geofence, &'static str> {
        let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let (Some(lat), Some(lng)) = (number(&self.lat), number(&self.lng)) else {
            return Err("centre: enter a latitude and a longitude");
        };
        if !LatLng::new(lat, lng).is_valid() {
            return Err("centre: latitude -90..90, longitude -180..180");
        }
        match number(&self.radius) {
            Some(radius) if radius > 0.0 => Ok(Geofence { lat, lng, radius }),
            _ => Err("radius: a positive number of metres"),
        }
    }
}

/// Edits one pet's safe zone.
#[function_component(FenceEditor)]
pub(crate) fn fence_editor(props: &FenceEditorProps) -> Html {
    let pet = &props.pet.0;
    let fields = use_state(|| Fields::initial(pet));
    let message = use_state(|| None::<String>);
    let input = |set: fn(&mut Fields, String)| on_input(&fields, set);
    let centre_on_pet = {
        let (fields, position) = (fields.clone(), pet.position());
        Callback::from(move |_: MouseEvent| {
            if let Some(p) = position {
                let radius = fields.radius.clone();
                fields.set(Fields {
                    lat: format!("{:.6}", p.lat),
                    lng: format!("{:.6}", p.lng),
                    radius,
                });
            }
        })
    };
    let on_save = {
        let (fields, message, client, id) = (
            fields.clone(),
            message.clone(),
            props.client.clone(),
            pet.id.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let text = match fields.parse() {
                Ok(zone) => save(
                    client.as_ref(),
                    &id,
                    zone.to_json().into_bytes(),
                    "safe zone saved",
                ),
                Err(err) => err.to_owned(),
            };
            message.set(Some(text));
        })
    };
    let on_remove = {
        let (message, client, id) = (message.clone(), props.client.clone(), pet.id.clone());
        Callback::from(move |_: MouseEvent| {
            message.set(Some(save(
                client.as_ref(),
                &id,
                Vec::new(),
                "safe zone removed",
            )));
        })
    };
    html! {
        <form class="fence-editor" data-pet-id={pet.id.clone()} onsubmit={on_save}>
            <h3>{ format!("Safe zone of pet {}", pet.id) }</h3>
            <label>{ "Latitude" }
                <input name="fence-lat" inputmode="decimal" value={fields.lat.clone()} oninput={input(|f, v| f.lat = v)} />
            </label>
            <label>{ "Longitude" }
                <input name="fence-lng" inputmode="decimal" value={fields.lng.clone()} oninput={input(|f, v| f.lng = v)} />
            </label>
            <label>{ "Radius (m)" }
                <input name="fence-radius" inputmode="numeric" value={fields.radius.clone()} oninput={input(|f, v| f.radius = v)} />
            </label>
            <div class="fence-buttons">
                <button type="button" onclick={centre_on_pet}>{ "Centre on pet" }</button>
                <button type="submit" class="primary" name="fence-save">{ "Save zone" }</button>
                if pet.geofence.is_some() {
                    <button type="button" name="fence-remove" onclick={on_remove}>{ "Remove" }</button>
                }
            </div>
            if let Some(text) = &*message {
                <p class="fence-message">{ text.clone() }</p>
            }
        </form>
    }
}

/// A callback that stores an input's new value with `set`.
fn on_input(fields: &UseStateHandle<Fields>, set: fn(&mut Fields, String)) -> Callback<InputEvent> {
    let fields = fields.clone();
    Callback::from(move |e: InputEvent| {
        let target: web_sys::HtmlInputElement = e.target_unchecked_into();
        let mut next = (*fields).clone();
        set(&mut next, target.value());
        fields.set(next);
    })
}

/// Publishes the zone (an empty payload removes it) retained at QoS 1; returns what to tell
/// the user.
fn save(client: Option<&MqttHandle>, id: &str, payload: Vec<u8>, done: &str) -> String {
    match client {
        Some(client) => {
            client
                .0
                .publish(&topic::topic(id, Kind::Geofence), payload, 1, true);
            done.to_owned()
        }
        None => "not connected yet".to_owned(),
    }
}
