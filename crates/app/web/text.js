// Turning untrusted text into DOM nodes, and the small pure helpers of the
// message list (days, grouping, emoji). Nothing here ever parses HTML: a
// message body, a name or a search snippet becomes text nodes, and a link
// becomes an <a> element whose address was checked to be http(s).

/** The reactions offered by the picker (any emoji the server accepts would do). */
export const REACTION_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

/** Consecutive messages of one author within this are shown as a group. */
export const GROUP_WITHIN_MS = 5 * 60_000;

/** Something that looks like a web address in running text. */
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/giu;
/** Trailing punctuation that ends a sentence rather than the address. */
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/u;

/** `text` with every RegExp metacharacter escaped. */
function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
}

/**
 * An <a> for `candidate` if it is an http(s) address, else null. The link
 * opens in a new tab without giving it a handle on this one.
 */
function safeLink(candidate) {
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const link = document.createElement('a');
  link.href = url.href;
  link.textContent = candidate;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  link.dataset.testid = 'message-link';
  return link;
}

/**
 * `text` as nodes: plain text, with `@name` of the mentioned members
 * (`mentionNames`: display name → true if that member is me) wrapped in a
 * highlighted span.
 */
function textWithMentions(text, mentionNames) {
  const names = [...mentionNames.keys()].filter((name) => name).sort((a, b) => b.length - a.length);
  if (names.length === 0) return [document.createTextNode(text)];
  const pattern = new RegExp(`@(?:${names.map(escapeRegExp).join('|')})`, 'gu');
  const nodes = [];
  let last = 0;
  for (const found of text.matchAll(pattern)) {
    if (found.index > last) nodes.push(document.createTextNode(text.slice(last, found.index)));
    const span = document.createElement('span');
    span.className = mentionNames.get(found[0].slice(1)) ? 'mention to-me' : 'mention';
    span.dataset.testid = 'mention';
    span.textContent = found[0];
    nodes.push(span);
    last = found.index + found[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/**
 * A message body as DOM nodes: http(s) addresses become links, mentions of
 * the members named in `mentionNames` are highlighted, the rest is text.
 */
export function bodyNodes(body, mentionNames = new Map()) {
  const nodes = [];
  let last = 0;
  for (const found of body.matchAll(URL_PATTERN)) {
    const address = found[0].replace(TRAILING_PUNCTUATION, '');
    const link = safeLink(address);
    if (!link) continue;
    if (found.index > last) nodes.push(...textWithMentions(body.slice(last, found.index), mentionNames));
    nodes.push(link);
    last = found.index + address.length;
  }
  if (last < body.length) nodes.push(...textWithMentions(body.slice(last), mentionNames));
  return nodes;
}

/** A search snippet `[{text, match}]` as nodes, the matches in <mark>. */
export function snippetNodes(segments) {
  return segments.map((segment) => {
    if (!segment.match) return document.createTextNode(segment.text);
    const mark = document.createElement('mark');
    mark.textContent = segment.text;
    return mark;
  });
}

/** The local calendar day of an RFC 3339 time, as a sortable key. */
export function dayKey(iso) {
  const date = new Date(iso);
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });

/** "Today", "Yesterday" or the date, for a day separator. */
export function dayLabel(iso) {
  const date = new Date(iso);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return 'Today';
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return dayFormat.format(date);
}

/** True if `message` continues the group of `previous` (same author, day, a few minutes). */
export function continuesGroup(previous, message) {
  if (!previous || previous.authorId !== message.authorId) return false;
  if (dayKey(previous.createdAt) !== dayKey(message.createdAt)) return false;
  return Date.parse(message.createdAt) - Date.parse(previous.createdAt) < GROUP_WITHIN_MS;
}

/**
 * The `@query` being typed just before the caret of `textarea`, as
 * `{start, query}`, or null when the caret is not in one.
 */
export function mentionQuery(textarea) {
  const upto = textarea.value.slice(0, textarea.selectionStart);
  const found = /(?:^|\s)@([^\s@]{0,32})$/u.exec(upto);
  if (!found) return null;
  return { start: upto.length - found[1].length - 1, query: found[1] };
}
