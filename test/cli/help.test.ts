// The operator's --help texts as read at a terminal: what recover does to a
// systemd member's unit is said there, and no line is wider than a terminal.
import { describe, expect, it } from 'vitest'
import { RECOVER_HELP } from '../../lib/cli/recover.ts'
import { BACKUP_HELP } from '../../lib/cli/backup.ts'
import { DRILL_HELP } from '../../lib/cli/drill.ts'
import { INVENTORY_HELP } from '../../lib/cli/inventory.ts'
import { unitHold } from '../../lib/plan/systemd.ts'

describe('recover --help', () => {
  it('says how a systemd member\'s unit is checked and held, and where the hold lives', () => {
    const h = unitHold('UNIT')
    expect(RECOVER_HELP).toContain('Members run by systemd (etcd_service: systemd)')
    // The paths it names are the ones the hold uses (the drop-in's split over two lines).
    expect(RECOVER_HELP.replace(/\/\n/g, '/')).toContain(h.dropIn.replace('UNIT.service', 'UNIT'))
    expect(RECOVER_HELP).toContain(h.file.replace('UNIT.service', 'UNIT'))
    expect(RECOVER_HELP).toContain('if it changed since preflight\nthat member\'s restore fails and no member is stopped')
  })

})

describe.each([['recover', RECOVER_HELP], ['backup', BACKUP_HELP], ['drill', DRILL_HELP], ['inventory', INVENTORY_HELP]])('%s --help', (_name, text) => {
  it('fits an 80-column terminal', () => {
    expect(text.split('\n').filter((l) => l.length > 80)).toEqual([])
  })
})
