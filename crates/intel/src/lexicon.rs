//! The contact-centre lexicon: phrases whose weight on a phone line differs
//! from general English, on the VADER valence scale (about -4 to 4).
//!
//! A matched phrase replaces whatever the general-language scorer would have
//! made of its words ("problem" is the topic of most calls, not an emotion;
//! "please" and "help" are how people ask; "its not working" and "third time
//! calling" carry frustration that general English scores as neutral).
//! Patterns use the [`phrases`](super::phrases) syntax.

/// How a domain phrase counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DomainKind {
    /// Its valence, turned by a preceding negator and scaled by boosters.
    Plain,
    /// Its valence as is: the phrase carries its own negation or is an
    /// answer particle ("not angry", "^no$").
    Fixed,
    /// Praise that turns sarcastic next to a complaint: `valence` when the
    /// utterance also complains ("oh great another hour on hold"),
    /// `genuine` otherwise ("oh great thanks").
    Sarcasm {
        /// The valence when the praise is sincere.
        genuine: f64,
    },
}

/// One lexicon entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainEntry {
    /// The phrase pattern.
    pub pattern: &'static str,
    /// Its valence (sarcastic valence for [`DomainKind::Sarcasm`]).
    pub valence: f64,
    /// How it counts.
    pub kind: DomainKind,
}

const fn plain(pattern: &'static str, valence: f64) -> DomainEntry {
    DomainEntry { pattern, valence, kind: DomainKind::Plain }
}

const fn fixed(pattern: &'static str, valence: f64) -> DomainEntry {
    DomainEntry { pattern, valence, kind: DomainKind::Fixed }
}

const fn sarcasm(pattern: &'static str, sarcastic: f64, genuine: f64) -> DomainEntry {
    DomainEntry { pattern, valence: sarcastic, kind: DomainKind::Sarcasm { genuine } }
}

/// Words that strengthen the next domain phrase (VADER's booster step).
pub const BOOSTERS: &[&str] = &[
    "really",
    "so",
    "very",
    "absolutely",
    "completely",
    "totally",
    "extremely",
    "utterly",
    "incredibly",
    "fucking",
    "bloody",
    "effing",
    "flipping",
    "frigging",
    "pretty",
    "truly",
    "seriously",
    "such",
    "quite",
];

/// Words that soften the next domain phrase.
pub const DAMPENERS: &[&str] = &["slightly", "somewhat", "bit", "little", "kinda", "sorta", "barely", "fairly"];

/// The built-in contact-centre lexicon.
pub const DOMAIN_LEXICON: &[DomainEntry] = &[
    // Waiting and repeating. Durations and repetitions are facts a negator
    // does not turn ("without internet for three days"), so they are fixed.
    fixed("still waiting", -1.8),
    fixed("still not working|fixed|sorted|resolved|done|here|arrived|right|connected|back|received", -2.0),
    fixed("still nothing|no", -1.6),
    fixed("still has|have|had|did|does|do|can|will|is|are|was not", -1.6),
    fixed("been waiting", -1.2),
    fixed("waiting|waited ages|forever", -1.6),
    fixed("waiting|waited for ages|hours|weeks|days|months, waiting|waited so|too long", -1.6),
    fixed("on hold", -1.0),
    fixed("on hold for ages|forever|hours, on hold for so long", -1.8),
    fixed("for ages|hours|months|weeks", -0.8),
    fixed("forever", -0.8),
    fixed("for|over an hour", -0.8),
    fixed("for * minutes|hours|days|weeks|months", -0.6),
    fixed("another hour|week|day|month|engineer|call", -1.2),
    fixed("taking|takes|took forever|ages", -1.8),
    fixed("taking|takes|took so|too long", -1.8),
    fixed("yet again, all over again, once again, again and again", -1.4),
    fixed("not again", -1.4),
    fixed("again", -0.4),
    fixed("same thing|question|problem|issue|answer", -0.8),
    fixed("second time", -0.6),
    fixed("third|fourth|fifth|sixth|tenth|umpteenth|hundredth time", -1.8),
    fixed("how many times", -1.8),
    fixed("every single time", -1.2),
    fixed("so many times, loads of times, countless|multiple|several times", -0.8),
    fixed("keep|keeps|kept asking|telling|explaining|repeating|saying|calling|getting|having", -1.0),
    fixed("keep|keeps|kept dropping|freezing|crashing|cutting|disconnecting|failing|happening|breaking", -0.8),
    fixed("repeat|repeating myself", -1.8),
    fixed("already told you, told you already, already|just said, already explained", -1.4),
    fixed("i said", -0.8),
    fixed("already did|done|tried|checked that|this", -1.0),
    fixed("did|done|tried that already", -1.0),
    // Being let down.
    plain("nobody|noone", -0.6),
    fixed("no one", -0.6),
    plain("nobody|noone called|rang|came|turned|showed|helped|knows|cares|listens|bothered|seems|got|has|ever", -1.4),
    fixed("no one called|rang|came|turned|showed|helped|knows|cares|listens|bothered|seems|got|has|ever", -1.4),
    fixed("not good enough", -2.2),
    fixed("not acceptable|on", -2.0),
    plain("waste of time, waste of my time, wasting|wasted my time, wasting time", -2.2),
    plain("fed up", -2.2),
    plain("sick of, sick and tired, tired of", -2.2),
    plain("had enough, enough is enough", -2.2),
    plain("give|giving up", -1.6),
    plain("wits end, end of my tether", -2.2),
    plain("lost|losing patience, losing my patience, running out of patience", -2.0),
    // Verdicts on the service.
    plain("ridiculous", -2.2),
    plain("absurd", -2.0),
    plain("useless", -2.2),
    plain("hopeless", -2.2),
    plain("pointless", -2.0),
    plain("unbelievable", -1.8),
    plain("unacceptable", -2.4),
    plain("a joke, what a joke", -2.0),
    plain("a complete|total|bad joke, an absolute joke", -2.2),
    plain("having a laugh", -1.8),
    plain("disgrace|disgraceful", -2.4),
    plain("shambles|shambolic", -2.2),
    plain("nightmare", -2.0),
    plain("rubbish", -1.8),
    plain("load of rubbish", -2.2),
    plain("appalling", -2.4),
    plain("shocking", -2.0),
    plain("diabolical|atrocious", -2.4),
    plain("incompetent|incompetence", -2.2),
    plain("farce", -2.2),
    plain("cowboys|clowns", -1.6),
    plain("kidding|joking me", -1.8),
    plain("you are kidding|joking", -1.8),
    plain("got|have to be kidding|joking", -1.8),
    plain("are you serious, you serious", -1.6),
    plain("can not be serious", -1.8),
    plain("for gods|god|christs|heavens|petes sake|sakes", -2.0),
    plain("for crying out loud", -2.0),
    plain("oh come on, come on now", -1.2),
    plain("round in circles, going in circles, round and round", -1.8),
    fixed("not listening|helping|helpful, not getting anywhere", -1.8),
    fixed("no help|use, not much help|use, of no use, not being helpful", -1.8),
    plain("getting|going nowhere", -1.8),
    plain("what is wrong with you, what is the matter with you", -2.2),
    plain("hung up on me, cut me off, put the phone down on me", -2.0),
    plain("without permission|asking|warning|consent", -1.6),
    plain("without my permission|consent", -1.6),
    plain("without telling me", -1.6),
    plain("was|were|been promised", -1.2),
    plain("you promised", -1.2),
    plain("you said it would, you said you would, told me it would", -1.0),
    fixed("not turn|show up", -1.4),
    fixed("never turned|showed up", -1.4),
    fixed("never came|arrived|received, never got|heard|called back", -1.2),
    fixed("not arrived|received|come, not heard|called|got back", -1.2),
    fixed("no show|refund|response|reply|answer|callback, no call back", -1.2),
    fixed("no signal|internet|service|connection|broadband|wifi|power|sound|picture|data, no dial tone, no phone line", -0.8),
    fixed("not working|work|connecting|loading|charging, not turning|turn on", -1.6),
    fixed("without internet|signal|service|power|phone|broadband|heating|wifi|water", -0.8),
    fixed("you do not understand|listen, you never understand|listen", -1.6),
    fixed("not understanding", -1.4),
    plain("what are you talking about", -1.4),
    fixed("not what i said, i did not say that", -1.2),
    plain("why do i have to", -1.0),
    fixed("have to keep", -1.2),
    fixed("you do not know, you have no idea", -1.0),
    plain("so you are telling me", -1.0),
    fixed("treated like this|dirt, treat me|us|your customers like this, is how you treat", -1.8),
    plain("fine whatever, fine then whatever", -1.6),
    plain("whatever", -0.4),
    plain("just fix|sort it, sort it out", -0.8),
    plain("yeah right", -2.0),
    plain("stopped working", -1.2),
    plain("thanks|cheers for nothing", -2.4),
    // Billing complaints (they also keep price talk from reading as a purchase).
    plain("price|prices rise|rises|increase|increases|hike|hikes", -1.0),
    plain("raised the|my price|prices|bill, put the|my price|prices|bill up, put up the|my price|prices|bill", -1.0),
    plain("went|gone|going|goes up", -0.6),
    plain("overcharged|overcharging", -1.4),
    plain("over|double charged, charged twice|again, charged me twice|again", -1.4),
    plain("charged too much, charging me for", -1.2),
    // Faults stated as facts: a problem, not yet a feeling.
    plain("problem|problems|issue|issues", -0.6),
    plain("real|serious|major|huge|big|massive problem|issue", -1.6),
    plain("error|errors", -0.6),
    plain("fault|faults|faulty", -0.6),
    plain("lost", -0.6),
    plain("stolen", -1.0),
    plain("broken|broke", -1.0),
    plain("dead", -1.0),
    plain("battery|phone dies|died|dying", -0.8),
    plain("wrong", -1.2),
    plain("what is wrong", -0.8),
    plain("mistake|mistakes", -0.8),
    plain("crash|crashes|crashing|crashed", -0.8),
    plain("freezing|freezes|froze|frozen", -0.6),
    plain("slow|slower", -0.4),
    plain("is|went|goes|been|was down", -0.6),
    plain("cut off, disconnected, cutting|cuts|dropping|drops out, dropped calls", -0.8),
    plain("cancel", -0.4),
    plain("complaint", -1.0),
    plain("make a complaint, formal complaint", -1.4),
    plain("damaged|cracked", -0.8),
    plain("stuck", -0.8),
    plain("fraud|fraudulent|hacked", -1.0),
    plain("emergency", -0.6),
    plain("urgent|urgently", -0.2),
    plain("sorry", 0.0),
    plain("pain", -1.0),
    // Resolution.
    plain("sorted", 1.8),
    plain("all sorted, sorted now|out", 2.0),
    plain("fixed", 1.6),
    plain("fixed|working|works now, working|works again, back on|up|online", 2.0),
    plain("up and running, back to normal, all working", 2.0),
    plain("that|it worked|works, that did it", 1.4),
    plain("resolved|solved", 1.6),
    plain("that helps|helped, that will help", 1.4),
    plain("that has helped", 1.4),
    plain("makes sense", 0.8),
    plain("fair enough", 0.6),
    fixed("no problem|problems|worries|bother", 1.0),
    fixed("not a problem", 1.0),
    // Negated upset is calm, not happy ("im not angry just confused").
    fixed("not angry|upset|mad|annoyed|cross|complaining|furious|frustrated", 0.3),
    fixed("not sure, not too|really sure", -0.2),
    // How people ask, greet and answer: not sentiment.
    plain("please", 0.2),
    plain("help", 0.4),
    plain("would like", 0.2),
    plain("would love", 0.8),
    plain("feel|feels|felt|looks|look|sounds|seems|something|anything like", 0.0),
    plain("honestly, to be honest|fair, in all honesty", 0.0),
    plain("pretty", 0.0),
    plain("good morning|afternoon|evening", 0.2),
    fixed("^well", 0.0),
    plain("oh well", -0.4),
    fixed("^yes|yeah|yep|yup|ok|okay|sure|alright|right", 0.4),
    fixed("^no|nope|nah$", -0.4),
    fixed("^no thanks|thank", 0.6),
    // Praise that a complaint beside it turns into sarcasm.
    sarcasm(
        "oh great|perfect|brilliant|wonderful|lovely|fantastic|marvellous|marvelous|good|joy|super|fabulous|excellent",
        -1.8,
        1.6,
    ),
    sarcasm("just great|perfect|brilliant|wonderful|lovely|fantastic|marvellous|marvelous|superb|excellent", -1.8, 2.2),
    sarcasm("great just great, perfect just perfect, brilliant just brilliant", -2.4, 2.6),
    sarcasm("just|exactly what i needed|need", -1.8, 1.6),
    sarcasm("well done, great|good|nice job, nice one, nice|great work, bravo", -1.8, 1.8),
    sarcasm(
        "brilliant|great|wonderful|fantastic|excellent|amazing|lovely|fabulous|superb service|support, brilliant|great|wonderful|fantastic|excellent|amazing|lovely|fabulous|superb customer service",
        -2.0,
        2.4,
    ),
    sarcasm("as always|usual, typical", -1.0, 0.0),
    sarcasm("^wonderful|great|brilliant|perfect|fantastic|lovely|marvellous|marvelous|excellent|superb", -1.8, 2.5),
    sarcasm("love|loving|loved|enjoy|enjoying being|waiting|sitting|listening|hearing|holding", -1.8, 2.0),
    sarcasm("love|loving it when, love|loving how", -1.8, 2.0),
    sarcasm("thanks a lot|bunch", -1.6, 1.9),
    sarcasm("how lovely|nice|wonderful|convenient", -1.6, 1.8),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phrases::PhraseMatcher;

    #[test]
    fn every_entry_compiles() {
        let mut m = PhraseMatcher::new();
        for (i, e) in DOMAIN_LEXICON.iter().enumerate() {
            m.add(e.pattern, i as u32).unwrap_or_else(|err| panic!("{}: {err}", e.pattern));
            assert!(e.valence.abs() <= 4.0, "{}", e.pattern);
        }
    }
}
