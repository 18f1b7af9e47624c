// The one way a value becomes part of a shell script in etcd-rescue: the `sh`
// tagged template (zx's `$` is the model). Every `${value}` is quoted for POSIX
// sh; only a Script (built by `sh` itself, or wrapped with `trusted()` by code
// that owns the text) goes in as script text. Remote commands take a Script, not
// a string, so an unquoted inventory value cannot be written by accident: it does
// not type-check.
//
// Quoting is only safe where the shell reads a word. Inside "..." a quoted value
// becomes '...' literally and any $(...) in it runs; inside '...' or `...` the
// quotes break out. So an interpolation anywhere but in plain command text is
// refused when the script is built, naming the template's text: assign the value
// to a variable (`D=${dir}`) and write "$D" instead.
import { quote } from './quote.ts'

const SCRIPT = Symbol('etcd-rescue.script')

/** Shell text that is safe to run: literal template text plus quoted values. */
export class Script {
  readonly [SCRIPT] = true
  /** Use `sh` or `trusted()`; the constructor is not part of the contract. */
  constructor(readonly text: string) {}
  toString(): string {
    return this.text
  }
  /** Plans and reports show a script as its text. */
  toJSON(): string {
    return this.text
  }
}

export type ShValue = string | number | bigint | Script | ReadonlyArray<string | number | bigint | Script>

export function isScript(v: unknown): v is Script {
  return typeof v === 'object' && v !== null && (v as { [SCRIPT]?: boolean })[SCRIPT] === true
}

/**
 * Script text written by this program, never derived from input (a shell
 * function kept in a constant, a line a caller assembled from other Scripts).
 * Each use is a claim that nothing outside the code reached `text`.
 */
export function trusted(text: string): Script {
  return new Script(text)
}

/** Joins Scripts with a separator (default newline) into one Script. */
export function joinScripts(parts: ReadonlyArray<Script>, separator: '\n' | ' ' | '; ' | ' && ' | ' | ' = '\n'): Script {
  for (const p of parts) if (!isScript(p)) throw new TypeError('joinScripts takes Scripts only')
  return new Script(parts.map((p) => p.text).join(separator))
}

function piece(v: ShValue): string {
  if (isScript(v)) return v.text
  if (Array.isArray(v)) return v.map((x) => piece(x)).join(' ')
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return quote(String(v))
  throw new TypeError(`sh: cannot put a ${v === null ? 'null' : typeof v} into a script`)
}

/**
 * `sh\`rm -f ${file}\`` → Script. Strings and numbers are quoted, arrays are
 * quoted element by element and joined with spaces (an argv), Scripts go in as
 * they are. Throws if an interpolation stands inside quotes, backticks or a comment.
 */
export function sh(strings: TemplateStringsArray, ...values: ShValue[]): Script {
  const lexer = new QuoteTracker()
  let out = ''
  for (let i = 0; i < strings.length; i++) {
    lexer.feed(strings[i])
    out += strings[i]
    if (i < values.length) {
      const v = values[i]
      if (!isScript(v) && lexer.context !== 'code') {
        throw new TypeError(`sh: a value may not stand inside ${lexer.context} (after ${JSON.stringify(strings[i].slice(-40))}); assign it to a variable and use "$VAR"`)
      }
      const text = piece(v)
      // A Script is text of ours: the tracker reads it too, so the context after it is right.
      if (isScript(v)) lexer.feed(text)
      else lexer.feedWord()
      out += text
    }
  }
  return new Script(out)
}

type Context = 'code' | 'double quotes' | 'single quotes' | 'backticks' | 'a comment'

/**
 * Follows just enough of the POSIX shell grammar to know, at any point of the
 * text, whether the next character would be read inside quotes: single and
 * double quotes, backslash escapes, comments, backticks and $(...), which opens
 * a fresh command context even inside double quotes.
 */
class QuoteTracker {
  private stack: Array<{ kind: 'code' | 'dq' | 'sq' | 'bq' | 'comment'; depth: number; sub: boolean }> = [{ kind: 'code', depth: 0, sub: false }]
  private escaped = false
  /** Whether the last character read ends a word (so a following # starts a comment). */
  private wordStart = true

  get context(): Context {
    const k = this.top.kind
    return k === 'code' ? 'code' : k === 'dq' ? 'double quotes' : k === 'sq' ? 'single quotes' : k === 'bq' ? 'backticks' : 'a comment'
  }

  private get top() {
    return this.stack[this.stack.length - 1]
  }

  /** A quoted value was appended: it is one word, closed. */
  feedWord(): void {
    this.wordStart = false
    this.escaped = false
  }

  feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]
      const top = this.top
      if (this.escaped) {
        this.escaped = false
        this.wordStart = false
        continue
      }
      switch (top.kind) {
        case 'comment':
          if (c === '\n') {
            this.stack.pop()
            this.wordStart = true
          }
          break
        case 'sq':
          if (c === "'") this.stack.pop()
          break
        case 'dq':
          if (c === '\\') this.escaped = true
          else if (c === '"') this.stack.pop()
          else if (c === '`') this.stack.push({ kind: 'bq', depth: 0, sub: true })
          else if (c === '$' && text[i + 1] === '(') {
            i++
            this.stack.push({ kind: 'code', depth: 0, sub: true })
            this.wordStart = true
          }
          break
        case 'bq':
          if (c === '\\') this.escaped = true
          else if (c === '`') this.stack.pop()
          break
        case 'code':
          if (c === '\\') {
            this.escaped = true
          } else if (c === "'") {
            this.stack.push({ kind: 'sq', depth: 0, sub: false })
          } else if (c === '"') {
            this.stack.push({ kind: 'dq', depth: 0, sub: false })
          } else if (c === '`') {
            this.stack.push({ kind: 'bq', depth: 0, sub: true })
          } else if (c === '#' && this.wordStart) {
            this.stack.push({ kind: 'comment', depth: 0, sub: false })
          } else if (c === '$' && text[i + 1] === '(') {
            i++
            this.stack.push({ kind: 'code', depth: 0, sub: true })
            this.wordStart = true
            continue
          } else if (c === '(') {
            top.depth++
          } else if (c === ')') {
            if (top.depth > 0) top.depth--
            else if (top.sub) this.stack.pop()
            // else: a case pattern's ")", nothing to close
          }
          this.wordStart = /[\s;&|()<>]/.test(c)
          continue
      }
      if (this.top.kind === 'code') this.wordStart = /[\s;&|()<>]/.test(c)
    }
  }
}
