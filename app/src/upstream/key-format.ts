/**
 * The characters an upstream API key may hold: printable ASCII without spaces. Anything else (a
 * line break, a pasted zero-width space) cannot go into an HTTP header, so undici would refuse
 * every request with it, and the pool would mistake that for a network failure. The admin API and
 * the environment both check keys against this one rule.
 */
export const UPSTREAM_KEY_CHARS = /^[\x21-\x7e]+$/;

export const UPSTREAM_KEY_CHARS_HINT = 'printable ASCII without spaces or line breaks';
