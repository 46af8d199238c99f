/*
 * microadjust-cms: the structured condition editor.
 *
 * A Stimulus controller ("ma-condition") registered on Wagtail's own Stimulus application.
 * The condition travels as JSON in a hidden textarea (the form field, target "input"); the
 * visual editor (target "editor") is rebuilt from it and writes it back on every change.
 *
 * Condition JSON: {"all": [...]}, {"any": [...]}, {"not": {...}} and rules
 * {"signal": "visit_count", "op": "gte", "value": 3} (plus "param" for signals that take one).
 * The editor always writes a group at the top ({"all": [...]} / {"any": [...]}, wrapped in
 * {"not": ...} when negated) and an empty string when there are no rules. Existing values are
 * only rewritten when the editor changes something.
 *
 * Loaded on every admin page (insert_global_admin_js) and again as widget media: the
 * registration below is idempotent. No build step, no dependencies.
 */
(() => {
  'use strict';

  const IDENTIFIER = 'ma-condition';
  const FLAG = '__microadjustConditionEditor';
  const EXTERNAL_SET = 'ma-condition:value-set';
  const WATCHED = Symbol.for('microadjust.conditionEditor.watched');

  if (window[FLAG]) return;

  const MODE_LABELS = { all: 'Match all of', any: 'Match any of' };
  const LIST_OPS = new Set(['in', 'not_in']);

  // -- catalogue (one fetch per page and URL) -------------------------------------------------

  const catalogues = new Map();

  function loadCatalogue(url) {
    if (!catalogues.has(url)) {
      const promise = fetch(url, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
      })
        .then((response) => {
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          return response.json();
        })
        .then((data) => {
          const signals = new Map();
          (data.signals || []).forEach((signal) => signals.set(signal.name, signal));
          return { signals, list: data.signals || [], operators: data.operators || {} };
        });
      // A failed load may be retried by the next editor that connects.
      promise.catch(() => catalogues.delete(url));
      catalogues.set(url, promise);
    }
    return catalogues.get(url);
  }

  // -- the textarea: notice values set from outside (telepath sets .value after inserting) ----

  const nativeValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value');

  function watchValue(textarea) {
    if (textarea[WATCHED]) return;
    textarea[WATCHED] = true;
    Object.defineProperty(textarea, 'value', {
      configurable: true,
      enumerable: true,
      get() {
        return nativeValue.get.call(this);
      },
      set(value) {
        nativeValue.set.call(this, value);
        this.dispatchEvent(new CustomEvent(EXTERNAL_SET));
      },
    });
  }

  // -- model: groups and rules ------------------------------------------------------------------

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  const makeGroup = (mode = 'all', children = [], negate = false) => ({
    kind: 'group', mode, negate, children,
  });

  function parseNode(node) {
    if (isObject(node)) {
      if ('signal' in node || 'op' in node) {
        return {
          kind: 'rule',
          signal: typeof node.signal === 'string' ? node.signal : '',
          op: typeof node.op === 'string' ? node.op : '',
          param: typeof node.param === 'string' ? node.param : '',
          value: 'value' in node ? node.value : undefined,
        };
      }
      const keys = Object.keys(node);
      if (keys.length === 1) {
        const [key] = keys;
        if ((key === 'all' || key === 'any') && Array.isArray(node[key])) {
          return makeGroup(key, node[key].map(parseNode));
        }
        if (key === 'not') {
          const inner = parseNode(node.not);
          if (inner.kind === 'group' && !inner.negate) {
            inner.negate = true;
            return inner;
          }
          return makeGroup('all', [inner], true);
        }
      }
    }
    // Anything else is kept verbatim (the server says what is wrong with it).
    return { kind: 'raw', json: node };
  }

  /** The root group for a textarea value; throws on unreadable JSON. */
  function parseRoot(text) {
    const trimmed = (text || '').trim();
    if (!trimmed) return makeGroup();
    let data = JSON.parse(trimmed);
    if (typeof data === 'string') data = data.trim() ? JSON.parse(data) : null; // double-encoded
    if (data === null || (isObject(data) && Object.keys(data).length === 0)) return makeGroup();
    const node = parseNode(data);
    return node.kind === 'group' ? node : makeGroup('all', [node]);
  }

  function serializeRule(rule, catalogue) {
    const signal = catalogue.signals.get(rule.signal);
    const out = { signal: rule.signal, op: rule.op };
    if (rule.op !== 'exists' && rule.value !== undefined) out.value = rule.value;
    if ((signal && signal.param) || (!signal && rule.param)) out.param = rule.param || '';
    return out;
  }

  function serializeNode(node, catalogue) {
    if (node.kind === 'raw') return node.json;
    if (node.kind === 'rule') return serializeRule(node, catalogue);
    const children = node.children
      .map((child) => serializeNode(child, catalogue))
      .filter((child) => child !== null); // empty groups are left out
    if (!children.length) return null;
    const group = { [node.mode]: children };
    return node.negate ? { not: group } : group;
  }

  // -- values -----------------------------------------------------------------------------------

  const hasChoices = (signal) => Array.isArray(signal.choices);

  /** The signal as a rule with this parameter sees it: its choices are the parameter's own
   *  when they depend on it (an experiment's arms), none for an unknown parameter. */
  function forParam(signal, param) {
    if (!signal || !signal.choices_by_param || !param) return signal;
    return { ...signal, choices: signal.choices_by_param[param] || [] };
  }
  const isNumeric = (signal) => signal.type === 'integer' || signal.type === 'number';

  function fitsSignal(signal, value) {
    if (value === null || value === undefined) return false;
    if (hasChoices(signal)) return signal.choices.some(([v]) => String(v) === String(value));
    if (signal.type === 'integer') return Number.isInteger(value);
    if (signal.type === 'number') return typeof value === 'number' && Number.isFinite(value);
    if (signal.type === 'boolean') return typeof value === 'boolean';
    return typeof value === 'string';
  }

  /** Keep what still makes sense of a value after the signal or operator changed. */
  function fitValue(signal, op, value) {
    if (op === 'exists') return undefined;
    const items = (Array.isArray(value) ? value : [value]).filter((v) => fitsSignal(signal, v));
    if (op === 'between') {
      if (!isNumeric(signal)) return undefined;
      if (items.length >= 2) return items.slice(0, 2);
      return items.length ? [items[0], null] : undefined;
    }
    if (LIST_OPS.has(op)) return items.length ? items : undefined;
    if (items.length) return items[0];
    return signal.type === 'boolean' ? true : undefined;
  }

  /** A typed value from what an editor typed; '' is "no value". */
  function parseTyped(signal, text) {
    const trimmed = text.trim();
    if (trimmed === '') return undefined;
    if (isNumeric(signal)) {
      const number = Number(trimmed);
      return Number.isFinite(number) ? number : trimmed;
    }
    return trimmed;
  }

  function choiceValue(signal, text) {
    const found = signal.choices.find(([v]) => String(v) === text);
    return found ? found[0] : undefined;
  }

  const displayList = (value) =>
    (Array.isArray(value) ? value : value === undefined || value === null ? [] : [value])
      .map(String)
      .join(', ');

  // -- DOM helpers ----------------------------------------------------------------------------

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([key, value]) => {
      if (value === undefined || value === null || value === false) return;
      if (key === 'className') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key in node && typeof value !== 'string') node[key] = value;
      else node.setAttribute(key, value === true ? '' : value);
    });
    children.forEach((child) => child && node.append(child));
    return node;
  }

  function select(className, label, options, current) {
    const node = el('select', { className, 'aria-label': label });
    options.forEach(([value, text]) => node.append(el('option', { value, text })));
    if (current !== undefined) node.value = current;
    return node;
  }

  function button(className, text, label) {
    return el('button', {
      type: 'button',
      className: `button button-small button-secondary ${className}`,
      text,
      'aria-label': label,
    });
  }

  // -- the controller -------------------------------------------------------------------------

  function defineController(Controller) {
    return class ConditionEditorController extends Controller {
      static targets = ['input', 'editor'];

      static values = { catalogueUrl: String };

      connect() {
        this.catalogue = null;
        this.root = makeGroup();
        this.onValueSet = () => this.refresh();
        watchValue(this.inputTarget);
        this.inputTarget.addEventListener(EXTERNAL_SET, this.onValueSet);
        this.element.classList.add('ma-condition--loading');
        const url = this.catalogueUrlValue;
        if (!url) {
          this.fail('no catalogue URL');
          return;
        }
        loadCatalogue(url).then(
          (catalogue) => {
            if (!this.element.isConnected) return;
            this.catalogue = catalogue;
            this.element.classList.remove('ma-condition--loading');
            this.refresh();
          },
          (error) => this.fail(error && error.message),
        );
      }

      disconnect() {
        if (this.hasInputTarget) this.inputTarget.removeEventListener(EXTERNAL_SET, this.onValueSet);
      }

      /** Fall back to the raw JSON when the signal list cannot be had. */
      fail(reason) {
        this.element.classList.remove('ma-condition--loading');
        this.element.classList.add('ma-condition--failed');
        this.editorTarget.replaceChildren(
          el('p', {
            className: 'ma-condition__notice',
            text: `The list of signals could not be loaded (${reason || 'unknown error'}). `
              + 'The condition is shown as JSON below.',
          }),
        );
        this.inputTarget.hidden = false;
        this.inputTarget.setAttribute('aria-label', 'Condition (JSON)');
      }

      /** Rebuild the editor from the textarea. */
      refresh() {
        if (!this.catalogue) return;
        const text = this.inputTarget.value;
        try {
          this.root = parseRoot(text);
        } catch (error) {
          this.editorTarget.replaceChildren(
            el('p', {
              className: 'ma-condition__notice',
              text: 'The stored condition could not be read; fix its JSON below or clear it.',
            }),
          );
          this.inputTarget.hidden = false;
          return;
        }
        this.inputTarget.hidden = true;
        this.editorTarget.replaceChildren(this.renderGroup(this.root, null));
      }

      /** Serialize the model into the textarea and tell Wagtail (dirty check, summaries). */
      write() {
        const json = serializeNode(this.root, this.catalogue);
        const text = json === null ? '' : JSON.stringify(json);
        if (nativeValue.get.call(this.inputTarget) === text) return;
        nativeValue.set.call(this.inputTarget, text);
        this.inputTarget.dispatchEvent(new Event('input', { bubbles: true }));
        this.inputTarget.dispatchEvent(new Event('change', { bubbles: true }));
      }

      // -- groups --

      renderGroup(group, parent) {
        const isRoot = parent === null;
        const node = el('div', {
          className: `ma-group${isRoot ? ' ma-group--root' : ''}`,
          role: 'group',
          'aria-label': isRoot ? 'Condition' : 'Group of rules',
        });

        const mode = select('ma-group__mode', 'Match', Object.entries(MODE_LABELS), group.mode);
        mode.addEventListener('change', () => {
          group.mode = mode.value;
          this.write();
        });

        const negateBox = el('input', { type: 'checkbox', checked: group.negate });
        negateBox.addEventListener('change', () => {
          group.negate = negateBox.checked;
          node.classList.toggle('ma-group--negated', group.negate);
          this.write();
        });
        node.classList.toggle('ma-group--negated', group.negate);
        const negate = el('label', {
          className: 'ma-group__negate',
          title: 'Match visitors for whom this group is NOT true',
        }, [negateBox, el('span', { text: 'Negate' })]);

        const header = el('div', { className: 'ma-group__header' }, [negate, mode]);
        if (!isRoot) {
          const remove = button('ma-remove', '✕', 'Remove group');
          remove.addEventListener('click', () => {
            parent.children.splice(parent.children.indexOf(group), 1);
            node.remove();
            this.write();
          });
          header.append(remove);
        }

        const list = el('div', { className: 'ma-group__items' });
        group.children.forEach((child) => list.append(this.renderNode(child, group)));

        const addRule = button('ma-add-rule', '+ Add rule');
        addRule.addEventListener('click', () => {
          const rule = this.newRule();
          group.children.push(rule);
          const row = this.renderNode(rule, group);
          list.append(row);
          this.write();
          row.querySelector('.ma-rule__signal').focus();
        });
        const addGroup = button('ma-add-group', '+ Add group');
        addGroup.addEventListener('click', () => {
          const child = makeGroup(group.mode === 'all' ? 'any' : 'all', [this.newRule()]);
          group.children.push(child);
          const box = this.renderNode(child, group);
          list.append(box);
          this.write();
          box.querySelector('.ma-group__mode').focus();
        });
        const footer = el('div', { className: 'ma-group__actions' }, [addRule, addGroup]);

        node.append(header, list, footer);
        return node;
      }

      renderNode(node, parent) {
        if (node.kind === 'group') return this.renderGroup(node, parent);
        if (node.kind === 'rule') return this.renderRule(node, parent);
        return this.renderRaw(node, parent);
      }

      renderRaw(node, parent) {
        const row = el('div', { className: 'ma-rule ma-rule--raw' }, [
          el('code', { className: 'ma-rule__raw', text: JSON.stringify(node.json) }),
        ]);
        row.append(this.removeButton(node, parent, row));
        return row;
      }

      removeButton(node, parent, row) {
        const remove = button('ma-remove', '✕', 'Remove rule');
        remove.addEventListener('click', () => {
          parent.children.splice(parent.children.indexOf(node), 1);
          row.remove();
          this.write();
        });
        return remove;
      }

      newRule() {
        const first = this.catalogue.list[0];
        const signal = first ? first.name : '';
        const op = first ? first.operators[0] : 'eq';
        return {
          kind: 'rule', signal, op, param: '', value: first ? fitValue(first, op, undefined) : undefined,
        };
      }

      // -- rules --

      renderRule(rule, parent) {
        const { signals, list, operators } = this.catalogue;
        const signal = forParam(signals.get(rule.signal), rule.param);
        const row = el('div', { className: 'ma-rule' });
        const rerender = (focusClass) => {
          const fresh = this.renderRule(rule, parent);
          row.replaceWith(fresh);
          const focus = fresh.querySelector(focusClass);
          if (focus) focus.focus();
        };

        const signalOptions = list.map((s) => [s.name, s.label]);
        if (!signal) signalOptions.unshift([rule.signal, `${rule.signal || '?'} (unknown signal)`]);
        const signalSelect = select('ma-rule__signal', 'Signal', signalOptions, rule.signal);
        if (signal && signal.help) signalSelect.title = signal.help;
        signalSelect.addEventListener('change', () => {
          const chosen = signals.get(signalSelect.value);
          if (!chosen) return;
          rule.signal = chosen.name;
          if (!chosen.operators.includes(rule.op)) [rule.op] = chosen.operators;
          if (!chosen.param) rule.param = '';
          else if (!rule.param && chosen.param_default) rule.param = chosen.param_default;
          else if (chosen.param_choices && !chosen.param_choices.some(([v]) => v === rule.param)) rule.param = '';
          rule.value = fitValue(forParam(chosen, rule.param), rule.op, rule.value);
          this.write();
          rerender('.ma-rule__signal');
        });
        row.append(signalSelect);

        if (signal ? signal.param : rule.param) {
          const label = (signal && signal.param) || 'Parameter';
          let param;
          if (signal && signal.param_choices) {  // known values only (checked on save): a list
            const options = [['', signal.param_choices.length ? `${label}…` : `No ${label.toLowerCase()} yet`]];
            signal.param_choices.forEach(([value, text]) => options.push([String(value), text]));
            if (rule.param && !signal.param_choices.some(([v]) => String(v) === rule.param)) {
              options.push([rule.param, `${rule.param} (not a choice)`]);
            }
            param = select('ma-rule__param', label, options, rule.param || '');
            param.addEventListener('change', () => {
              rule.param = param.value;
              rule.value = fitValue(forParam(signals.get(rule.signal), rule.param), rule.op, rule.value);
              this.write();
              rerender('.ma-rule__param');
            });
          } else {
            param = el('input', {
              type: 'text',
              className: 'ma-rule__param',
              'aria-label': label,
              placeholder: label,
              value: rule.param,
            });
            param.addEventListener('input', () => {
              rule.param = param.value.trim();
              this.write();
            });
          }
          row.append(param);
        }

        const allowed = signal ? signal.operators : Object.keys(operators);
        const opOptions = allowed.map((op) => [op, operators[op] || op]);
        if (!allowed.includes(rule.op)) {
          opOptions.unshift([rule.op, `${operators[rule.op] || rule.op || '?'} (not allowed)`]);
        }
        const opSelect = select('ma-rule__op', 'Operator', opOptions, rule.op);
        opSelect.addEventListener('change', () => {
          rule.op = opSelect.value;
          if (signal) rule.value = fitValue(signal, rule.op, rule.value);
          this.write();
          rerender('.ma-rule__op');
        });
        row.append(opSelect);

        const value = signal
          ? this.renderValue(rule, signal)
          : el('input', {
            type: 'text',
            className: 'ma-rule__value',
            'aria-label': 'Value',
            value: rule.value === undefined ? '' : JSON.stringify(rule.value),
            disabled: true,
          });
        if (value) row.append(value);

        row.append(this.removeButton(rule, parent, row));
        return row;
      }

      renderValue(rule, signal) {
        const { op } = rule;
        const set = (value) => {
          rule.value = value;
          this.write();
        };
        if (op === 'exists') return null;

        if (op === 'between') {
          const pair = Array.isArray(rule.value) ? rule.value : [];
          const input = (index, label) => {
            const node = el('input', {
              type: isNumeric(signal) ? 'number' : 'text',
              step: signal.type === 'integer' ? '1' : 'any',
              className: 'ma-rule__value',
              'aria-label': label,
              value: pair[index] === undefined || pair[index] === null ? '' : String(pair[index]),
            });
            node.addEventListener('input', () => {
              const both = [low, high].map((n) => {
                const typed = parseTyped(signal, n.value);
                return typed === undefined ? null : typed;
              });
              set(both.every((v) => v === null) ? undefined : both);
            });
            return node;
          };
          const low = input(0, 'Low value');
          const high = input(1, 'High value');
          return el('span', { className: 'ma-rule__between' }, [
            low, el('span', { className: 'ma-rule__and', text: 'and' }), high,
          ]);
        }

        if (hasChoices(signal) && LIST_OPS.has(op)) {
          const chosen = new Set((Array.isArray(rule.value) ? rule.value : []).map(String));
          const box = el('span', {
            className: 'ma-rule__value ma-rule__choices',
            role: 'group',
            'aria-label': 'Values',
          });
          if (!signal.choices.length) {
            box.append(el('span', { className: 'ma-rule__empty', text: 'No choices available' }));
          }
          signal.choices.forEach(([value, label]) => {
            const check = el('input', {
              type: 'checkbox', value: String(value), checked: chosen.has(String(value)),
            });
            check.addEventListener('change', () => {
              const picked = signal.choices
                .filter(([v]) => box.querySelector(`input[value="${CSS.escape(String(v))}"]`).checked)
                .map(([v]) => v);
              set(picked.length ? picked : undefined);
            });
            box.append(el('label', { className: 'ma-rule__choice' }, [check, el('span', { text: label })]));
          });
          return box;
        }

        if (hasChoices(signal)) {
          const current = rule.value === undefined || rule.value === null ? '' : String(rule.value);
          const options = [['', signal.choices.length ? 'Choose…' : 'No choices available']];
          signal.choices.forEach(([value, label]) => options.push([String(value), label]));
          if (current && !signal.choices.some(([v]) => String(v) === current)) {
            options.push([current, `${current} (not a choice)`]);
          }
          const node = select('ma-rule__value', 'Value', options, current);
          node.addEventListener('change', () => {
            set(node.value === '' ? undefined : (choiceValue(signal, node.value) ?? node.value));
          });
          return node;
        }

        if (signal.type === 'boolean' && !LIST_OPS.has(op)) {
          const current = rule.value === undefined ? '' : String(rule.value);
          const options = [['true', 'Yes'], ['false', 'No']];
          if (current !== 'true' && current !== 'false') options.unshift(['', 'Choose…']);
          const node = select('ma-rule__value', 'Value', options, current);
          node.addEventListener('change', () => {
            set(node.value === '' ? undefined : node.value === 'true');
          });
          return node;
        }

        if (LIST_OPS.has(op)) {
          const node = el('input', {
            type: 'text',
            className: 'ma-rule__value',
            'aria-label': 'Values (comma-separated)',
            placeholder: isNumeric(signal) ? '1, 2, 3' : 'one, two, three',
            value: displayList(rule.value),
          });
          node.addEventListener('input', () => {
            const items = node.value.split(',')
              .map((item) => parseTyped(signal, item))
              .filter((item) => item !== undefined);
            set(items.length ? items : undefined);
          });
          return node;
        }

        const node = el('input', {
          type: isNumeric(signal) ? 'number' : 'text',
          step: isNumeric(signal) ? (signal.type === 'integer' ? '1' : 'any') : undefined,
          className: 'ma-rule__value',
          'aria-label': 'Value',
          value: rule.value === undefined || rule.value === null
            ? ''
            : (typeof rule.value === 'object' ? JSON.stringify(rule.value) : String(rule.value)),
        });
        node.addEventListener('input', () => set(parseTyped(signal, node.value)));
        return node;
      }
    };
  }

  // -- registration (idempotent) --------------------------------------------------------------

  function register() {
    const app = window.wagtail && window.wagtail.app;
    const stimulus = window.StimulusModule;
    if (!app || !stimulus) return false;
    if (window[FLAG]) return true;
    window[FLAG] = true;
    const router = app.router;
    if (router && router.modulesByIdentifier && router.modulesByIdentifier.has(IDENTIFIER)) {
      return true;
    }
    app.register(IDENTIFIER, defineController(stimulus.Controller));
    return true;
  }

  if (!register()) {
    document.addEventListener('DOMContentLoaded', () => {
      if (!register()) {
        // eslint-disable-next-line no-console
        console.error('microadjust-cms: Wagtail Stimulus application not found; '
          + 'the condition editor is not available.');
      }
    }, { once: true });
  }
})();
