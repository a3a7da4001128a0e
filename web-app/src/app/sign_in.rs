//! The sign-in form, shown over the map when the gateway wants a user, and the signed-in
//! user's name with a sign-out button for the top bar.
//!
//! The form is a plain `<form>` with inputs named `username` and `password`, so password
//! managers and tests find them. Its submit is handled here and never reaches the network as
//! a form post (`method="post"` is only a guard: a GET would put the password in the URL).

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::model::Credentials;

/// Props of [`SignIn`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct SignInProps {
    /// Why the last attempt failed, if it did.
    pub(crate) error: Option<String>,
    /// An attempt is under way: the button says so and does nothing.
    pub(crate) busy: bool,
    /// The user submitted a username and password.
    pub(crate) on_sign_in: Callback<Credentials>,
}

/// The sign-in form.
#[function_component(SignIn)]
pub(crate) fn sign_in(props: &SignInProps) -> Html {
    let username = use_node_ref();
    let password = use_node_ref();
    let onsubmit = {
        let (username, password) = (username.clone(), password.clone());
        let (busy, on_sign_in) = (props.busy, props.on_sign_in.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let value = |node: &NodeRef| {
                node.cast::<HtmlInputElement>()
                    .map(|input| input.value())
                    .unwrap_or_default()
            };
            let credentials = Credentials {
                username: value(&username).trim().to_owned(),
                password: value(&password),
            };
            if !busy && !credentials.username.is_empty() {
                on_sign_in.emit(credentials);
            }
        })
    };
    html! {
        <div class="signin-backdrop">
            <form class="signin" method="post" action="" {onsubmit} aria-labelledby="signin-title"
                  data-busy={busy_str(props.busy)}>
                <h2 id="signin-title">{ "Sign in to see your pets" }</h2>
                <label>
                    <span>{ "Username" }</span>
                    <input ref={username} name="username" autocomplete="username" required=true
                           autocapitalize="none" spellcheck="false" />
                </label>
                <label>
                    <span>{ "Password" }</span>
                    <input ref={password} name="password" type="password"
                           autocomplete="current-password" required=true />
                </label>
                if let Some(error) = &props.error {
                    <p class="signin-error" role="alert">{ error }</p>
                }
                <button type="submit" name="sign-in" disabled={props.busy}>
                    { if props.busy { "Signing in…" } else { "Sign in" } }
                </button>
            </form>
        </div>
    }
}

fn busy_str(busy: bool) -> &'static str {
    if busy {
        "true"
    } else {
        "false"
    }
}

/// Props of [`UserMenu`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct UserMenuProps {
    /// Who is signed in.
    pub(crate) username: AttrValue,
    /// The user clicked "Sign out".
    pub(crate) on_sign_out: Callback<()>,
}

/// The signed-in user and the sign-out button.
#[function_component(UserMenu)]
pub(crate) fn user_menu(props: &UserMenuProps) -> Html {
    let onclick = props.on_sign_out.reform(|_: MouseEvent| ());
    html! {
        <div class="user-menu">
            <span class="user-name" data-user={props.username.clone()}>{ props.username.clone() }</span>
            <button type="button" class="sign-out" name="sign-out" {onclick}>{ "Sign out" }</button>
        </div>
    }
}
