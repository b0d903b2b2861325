package org.align4j.evaluation.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import javax.imageio.ImageIO;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** Line charts with XChart, rendered off-screen to PNG bytes (no display needed). */
public final class Charts {
    /** A colour per series, in order: readable on white and for the common colour-blindnesses. */
    private static final Color[] PALETTE = {
        new Color(0x0072B2),
        new Color(0xD55E00),
        new Color(0x009E73),
        new Color(0xCC79A7),
        new Color(0xE69F00),
        new Color(0x56B4E9),
        new Color(0x000000),
        new Color(0xF0E442)
    };

    static {
        System.setProperty("java.awt.headless", "true");
    }

    /**
     * One line.
     *
     * @param name legend text
     * @param x x values
     * @param y y values (same length)
     * @param dashed draw dashed (for reference lines such as a closed form)
     */
    public record Series(String name, double[] x, double[] y, boolean dashed) {
        /**
         * @param name legend text
         * @param x x values
         * @param y y values
         */
        public Series(String name, double[] x, double[] y) {
            this(name, x, y, false);
        }
    }

    /**
     * What to draw.
     *
     * @param title chart title
     * @param xTitle x-axis title
     * @param yTitle y-axis title
     * @param series the lines (at least one)
     * @param yMin fixed lower y limit, or NaN for automatic
     * @param yMax fixed upper y limit, or NaN for automatic
     */
    public record Spec(String title, String xTitle, String yTitle, List<Series> series, double yMin, double yMax) {
        /**
         * @param title chart title
         * @param xTitle x-axis title
         * @param yTitle y-axis title
         * @param series the lines
         */
        public Spec(String title, String xTitle, String yTitle, List<Series> series) {
            this(title, xTitle, yTitle, series, Double.NaN, Double.NaN);
        }
    }

    private Charts() {}

    /**
     * @param spec the chart
     * @param width pixels
     * @param height pixels
     * @return the chart as PNG bytes
     */
    public static byte[] png(Spec spec, int width, int height) {
        return grid(List.of(spec), 1, width, height);
    }

    /**
     * Several charts in one picture, row by row.
     *
     * @param specs the charts
     * @param columns charts per row
     * @param cellWidth pixels per chart
     * @param cellHeight pixels per chart
     * @return PNG bytes
     */
    public static byte[] grid(List<Spec> specs, int columns, int cellWidth, int cellHeight) {
        int rows = (specs.size() + columns - 1) / columns;
        BufferedImage image = new BufferedImage(columns * cellWidth, rows * cellHeight, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        for (int i = 0; i < specs.size(); i++) {
            Graphics2D cell =
                    (Graphics2D) g.create((i % columns) * cellWidth, (i / columns) * cellHeight, cellWidth, cellHeight);
            chart(specs.get(i), cellWidth, cellHeight).paint(cell, cellWidth, cellHeight);
            cell.dispose();
        }
        g.dispose();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(image, "png", out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static XYChart chart(Spec spec, int width, int height) {
        XYChart chart = new XYChartBuilder()
                .width(width)
                .height(height)
                .title(spec.title())
                .xAxisTitle(spec.xTitle())
                .yAxisTitle(spec.yTitle())
                .build();
        var st = chart.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setPlotBorderVisible(false);
        st.setLegendPosition(Styler.LegendPosition.InsideNE);
        st.setLegendBackgroundColor(new Color(255, 255, 255, 200));
        st.setLegendBorderColor(new Color(0, 0, 0, 0));
        st.setMarkerSize(0);
        st.setXAxisDecimalPattern("#,###.##");
        st.setXAxisTickMarkSpacingHint(90); // about one label per 90 px, so step labels never overlap
        if (!Double.isNaN(spec.yMin())) {
            st.setYAxisMin(spec.yMin());
        }
        if (!Double.isNaN(spec.yMax())) {
            st.setYAxisMax(spec.yMax());
        }
        if (spec.series().isEmpty()) {
            throw new IllegalArgumentException("chart '" + spec.title() + "': no series");
        }
        int i = 0;
        for (Series s : spec.series()) {
            XYSeries xy = chart.addSeries(s.name(), s.x(), s.y());
            xy.setMarker(SeriesMarkers.NONE);
            xy.setLineColor(PALETTE[i++ % PALETTE.length]);
            xy.setLineStyle(
                    s.dashed()
                            ? new BasicStroke(
                                    2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 10f, new float[] {6f, 4f}, 0f)
                            : new BasicStroke(2f));
        }
        return chart;
    }
}
