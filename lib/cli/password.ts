// -K/--ask-become-pass: the become (sudo) password, asked once for every host,
// as Ansible asks it. On a terminal the typed characters are not echoed; without
// one, the first line of stdin is the password (so CI and scripts can pipe it).
// It is never printed, logged or written to a report.
import { InputError } from '../errors.ts'

export async function askBecomePassword(prompt = 'BECOME password: '): Promise<string> {
  const input = process.stdin
  if (!input.isTTY) return readFirstLine(input)
  process.stderr.write(prompt)
  input.setRawMode(true)
  input.resume()
  let typed = ''
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData)
            return resolve(typed)
          }
          if (ch === '\u0003') {
            input.off('data', onData)
            return reject(new InputError('interrupted while asking for the become password'))
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1)
          else typed += ch
        }
      }
      input.on('data', onData)
    })
  } finally {
    input.setRawMode(false)
    input.pause()
    process.stderr.write('\n')
  }
}

function readFirstLine(input: NodeJS.ReadStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const done = () => {
      input.off('data', onData)
      input.off('end', onEnd)
      input.pause()
    }
    const onData = (d: Buffer) => {
      text += d.toString('utf8')
      const i = text.indexOf('\n')
      if (i >= 0) {
        done()
        resolve(text.slice(0, i).replace(/\r$/, ''))
      }
    }
    const onEnd = () => {
      done()
      if (text) resolve(text.replace(/\r?\n?$/, ''))
      else reject(new InputError('-K: no become password on stdin', { hint: 'Pipe it in (first line of stdin), or run from a terminal.' }))
    }
    input.on('data', onData)
    input.on('end', onEnd)
    input.resume()
  })
}
