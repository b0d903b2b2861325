/**
 * Reports: XChart PNGs of a run's logged metrics (runs overlaid), the bandit's learning curves, and one
 * self-contained HTML page; rendered pages can be screenshotted in headless Chromium.
 */
package org.align4j.evaluation.report;
