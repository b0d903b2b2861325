package org.align4j.losses;

import java.util.List;
import java.util.Locale;

/** Builds an objective from its CLI/config name, as {@code --loss} spells it. */
public final class Objectives {
    /** The names {@link #create} accepts. */
    public static final List<String> NAMES = List.of("dpo", "cdpo", "robust", "hinge", "ipo", "ipo-sum", "ipo-soft", "simpo");

    private Objectives() {}

    /**
     * @param name one of {@link #NAMES}
     * @param beta β
     * @param labelSmoothing ε for cdpo and robust (0.1 if 0 is given for them)
     * @param preference default p for ipo-soft
     * @param gamma γ for simpo
     * @return the objective
     */
    public static PreferenceLoss create(String name, double beta, double labelSmoothing, double preference, double gamma) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "dpo":
            case "sigmoid":
                return new DpoLoss(beta, labelSmoothing);
            case "cdpo":
                return new DpoLoss(beta, labelSmoothing == 0 ? 0.1 : labelSmoothing);
            case "robust":
                return new RobustDpoLoss(beta, labelSmoothing == 0 ? 0.1 : labelSmoothing);
            case "hinge":
                return new HingeLoss(beta);
            case "ipo":
                return new IpoLoss(beta);
            case "ipo-sum":
                return new IpoLoss(beta, PreferenceLoss.Reduction.SUM);
            case "ipo-soft":
                return IpoLoss.soft(beta, preference);
            case "simpo":
                return new SimPoLoss(beta, gamma);
            default:
                throw new IllegalArgumentException("loss: unknown objective '" + name + "'; choose one of " + NAMES);
        }
    }
}
